# convnotes: every target creates .venv on first use, so each is one command on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The torch pair installed beside fastai; override for another platform, e.g. `make test TORCH="torch torchvision"`.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
RUN := tools/with-mnist

.PHONY: install test nbtest nbtest-all-cores pytest reproduce collapse-map outputs docs serve readme bench margins sync clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install $(TORCH) -e ".[dev]"
	touch $(STAMP)

## Every notebook top to bottom (the notebooks are the tests), then the tests that need more than a notebook
test: $(STAMP)
	$(RUN) $(MAKE) --no-print-directory nbtest pytest

# tools/nbtest.py is nbdev-test starting the slowest notebooks first (pyproject.toml's slow_notebooks): in name
# order the comparison notebook starts halfway, and the suite ends waiting for it alone (2-core CPU, one
# session, alternating: 565 and 592 s in name order, 521 and 537 s slowest first). Two notebooks train at once,
# and it shares the cores out among them (why, and what it saves: its docstring).
# OMP_WAIT_POLICY=PASSIVE is for an OMP_NUM_THREADS of your own above that: OpenMP's default spin-waiting would
# make each notebook burn the cores the other needs (`make bench` measures it); results are bit for bit the same.
nbtest:
	@OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python tools/nbtest.py --n-workers 2

## The notebooks again, one at a time with torch's default threads (every core, as in a learner's Jupyter):
## seeded numbers move as they would on another CPU, and every lesson must still hold (CI runs both)
nbtest-all-cores: $(STAMP)
	$(RUN) $(BIN)/python tools/nbtest.py --n-workers 1

pytest:
	$(BIN)/python -m pytest

## The main job: every training experiment with 3 seeds; writes results/results.{json,md} and figures
reproduce: $(STAMP)
	$(RUN) $(BIN)/convnotes reproduce --out results

## The collapse map's stored sweep (chapter 11), regenerated: the default grid with 2 jobs (about 40 min on a
## 2-core CPU; a few on a GPU); sweep/ keeps the runs, so an interrupted run goes on where it stopped
collapse-map: $(STAMP)
	$(RUN) $(BIN)/convnotes sweep --jobs 2 --out sweep
	cp sweep/sweep.json nbs/.collapse_map.json.tmp && mv nbs/.collapse_map.json.tmp nbs/collapse_map.json

## Re-run every notebook in a real Jupyter kernel and save its outputs (what the docs site shows), then clean,
## and regenerate the README, which shows the home page's outputs (else `make sync` finds it stale)
outputs: $(STAMP)
	$(RUN) $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1200 nbs/*.ipynb
	$(BIN)/nbdev-clean
	$(MAKE) --no-print-directory readme

## Notebooks and module in sync, notebooks clean: both commands must leave no diff
sync: $(STAMP)
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean
	$(BIN)/python tools/docs.py readme
	@changed=$$(git status --porcelain -- nbs convnotes README.md); \
	if [ -n "$$changed" ]; then echo "nbdev-export/nbdev-clean/make readme changed these files; run them and commit:"; echo "$$changed"; git diff --stat -- nbs convnotes README.md; exit 1; fi; \
	echo "sync: nbdev-export, nbdev-clean and the README generator leave no diff"

## The website, offline: nbdev processes the notebooks, Sphinx + myst-nb + furo render them into _docs/
docs: $(STAMP)
	$(BIN)/python tools/docs.py site --out _docs

serve: docs
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _docs 8000

## README.md from nbs/index.ipynb (the offline nbdev-readme)
readme: $(STAMP)
	$(BIN)/python tools/docs.py readme

## Timings (not a test): book pipeline vs convnotes vs a plain PyTorch loop, one epoch each, 30 rounds (about 25 min on 2 cores)
bench: $(STAMP)
	$(RUN) $(BIN)/python benchmarks/bench.py --out benchmarks/RESULTS.md

## Chapters 05, 08 and 09's one-seed assertions over 40 seeds (not a test; about 30 min on 2 cores): how many seeds each holds
## for and how close the closest came to failing it, in benchmarks/MARGINS.md (the site's Seeds page)
margins: $(STAMP)
	$(RUN) $(BIN)/convnotes reproduce --only sample,one_cycle,batchnorm,batchnorm_before,batchnorm_5 --seeds 40 --out margins
	$(BIN)/python benchmarks/margins.py margins/results.json --out benchmarks/MARGINS.md

clean:
	rm -rf _docs _proc _site_src test-artifacts build dist *.egg-info .pytest_cache .hypothesis
