# The set-up in two commands on a fresh clone (Python >= 3.10 with venv):
#   make train     # .venv with torch and nmt, then the main job (python -m nmt.train), offline
#   make test      # .venv with everything the suite exercises, then python -m pytest -q
# and for contributors: make lint, make docs, make notebooks. Arguments for the training command go in ARGS, for
# pytest in PYTEST_ARGS:
#   make train ARGS="experiment=quickstart"     (also: make quickstart)
#
# Where torch comes from (TORCH_INDEX_URL): without an NVIDIA GPU (no nvidia-smi), PyTorch's CPU
# index, whose CPU-only wheel is a fraction of the CUDA build that PyPI serves on Linux; if that
# index cannot be reached, PyPI. With nvidia-smi, PyPI's default (CUDA) build. Set it yourself for
# another build, e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126, or empty for PyPI:
#   make train TORCH_INDEX_URL=
# The venv is made once; edit pyproject.toml (or delete .venv) and the next target re-installs.

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,$(TORCH_CPU_INDEX))
# The extras the test suite exercises: with all of them nothing is skipped for a missing package.
TEST_EXTRAS ?= dev,baselines,embeddings,serve,korean
ARGS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check
PROJECT_FILES := pyproject.toml setup.py

.PHONY: train quickstart test lint docs notebooks clean

train: $(VENV)/.installed-base
	$(BIN)/python -m nmt.train $(ARGS)

quickstart: $(VENV)/.installed-base
	$(BIN)/python -m nmt.train experiment=quickstart $(ARGS)

test: $(VENV)/.installed-$(TEST_EXTRAS)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy nmt

docs: $(VENV)/.installed-docs
	$(BIN)/mkdocs build --strict

# The course notebooks: each .ipynb must hold its jupytext source's cells, then each runs top to
# bottom in a fresh kernel.
notebooks: $(VENV)/.installed-$(TEST_EXTRAS),notebooks
	$(BIN)/python .ci/notebooks_in_sync.py
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=300 --timeout=600 notebooks/

clean:
	rm -rf $(VENV)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch before nmt, so that nmt's `torch>=...` is already met and pip pulls no other build.
$(VENV)/.torch-$(TORCH_VERSION): | $(BIN)/python
	@if [ -n "$(TORCH_INDEX_URL)" ]; then \
		echo "torch $(TORCH_VERSION) from $(TORCH_INDEX_URL)"; \
		$(PIP) --index-url "$(TORCH_INDEX_URL)" --retries 1 --timeout 20 "torch==$(TORCH_VERSION)" \
		|| { echo "$(TORCH_INDEX_URL) failed; torch $(TORCH_VERSION) from PyPI instead"; \
		     $(PIP) "torch==$(TORCH_VERSION)"; }; \
	else \
		echo "torch $(TORCH_VERSION) from PyPI"; $(PIP) "torch==$(TORCH_VERSION)"; \
	fi
	touch $@

# nmt itself (editable), with the extras named after the dash: base = none.
$(VENV)/.installed-%: $(VENV)/.torch-$(TORCH_VERSION) $(PROJECT_FILES)
	$(PIP) -e ".$(if $(filter base,$*),,[$*])"
	touch $@
