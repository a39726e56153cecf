# One way to install, test and run the project; the README and .ci/run use these targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build.
# Elsewhere, e.g.: make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
# what `make demo` prepares: the AG News sample shipped in data/ (offline), or a Hub dataset
# name (SOURCE=fancyzhx/ag_news for the full 120k) or a local file/directory
SOURCE ?= $(or $(CLASSIFY_SOURCE),data/ag_news_sample)

.PHONY: install test lint demo bench bench-scale clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check classify_cli tests benchmarks
	$(BIN)/ruff format --check classify_cli tests benchmarks

test: lint
	$(BIN)/python -m pytest

# into the commands' default paths (data/ag_news, runs/ag_news): `classify predict TEXT`,
# `info` and `evaluate` then find the demo's model with no options
demo: install
	$(BIN)/classify prepare --from $(SOURCE)
	$(BIN)/classify train
	$(BIN)/classify evaluate
	$(BIN)/classify predict -k 2 "Stocks rally as the Fed holds rates" "Late goal sends United into the final"

bench: install
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/bench.py

# classify against fastText on corpora whose vocabulary grows (120k and 1M documents; ~15 min)
bench-scale: install
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/corpus.py --out build/corpus120k --train-docs 120000
	$(BIN)/python benchmarks/corpus.py --out build/corpus1m --train-docs 1000000
	$(BIN)/python benchmarks/scale.py build/corpus120k build/corpus1m --work build/scale --json build/scale.json

clean:
	rm -rf build runs .pytest_cache
