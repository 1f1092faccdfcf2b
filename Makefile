# convnotes: every target creates .venv on first use, so each is one command on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The torch pair installed beside fastai; override for another platform, e.g. `make test TORCH="torch torchvision"`.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
RUN := tools/with-mnist

.PHONY: install test nbtest pytest reproduce outputs docs bench sync clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install $(TORCH) -e ".[dev]"
	touch $(STAMP)

## Every notebook top to bottom (the notebooks are the tests), then the tests that need more than a notebook
test: $(STAMP)
	$(RUN) $(MAKE) --no-print-directory nbtest pytest

nbtest:
	$(BIN)/nbdev-test --n-workers 2 --do-print

pytest:
	$(BIN)/python -m pytest

## The main job: reproduce the course's results
reproduce: $(STAMP)
	$(RUN) $(BIN)/convnotes data
	$(RUN) $(BIN)/nbdev-test --do-print --timing

## Re-run every notebook in a real Jupyter kernel and save its outputs (what the docs site shows), then clean
outputs: $(STAMP)
	$(RUN) $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1200 nbs/*.ipynb
	$(BIN)/nbdev-clean

## Notebooks and module in sync, notebooks clean: both commands must leave no diff
sync: $(STAMP)
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean
	@changed=$$(git status --porcelain -- nbs convnotes); \
	if [ -n "$$changed" ]; then echo "nbdev-export/nbdev-clean changed these files; run them and commit:"; echo "$$changed"; git diff --stat -- nbs convnotes; exit 1; fi; \
	echo "sync: nbdev-export and nbdev-clean leave no diff"

docs: $(STAMP)
	@echo "The offline docs site (Sphinx + myst-nb) is not built yet: see the docs issue." && exit 1

bench: $(STAMP)
	@echo "The benchmark is not written yet: see the performance issue." && exit 1

clean:
	rm -rf _docs _proc build dist *.egg-info .pytest_cache .hypothesis
