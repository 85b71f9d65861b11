# Two set-up commands on a fresh machine: `make lab` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
# torch 2.13's CPU build; on a machine with a GPU, override: make lab TORCH=torch
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[test,ray]'
	touch $@

install: $(VENV)/.installed

# The lab on the embedded default: prepare the testbed, score the baselines, start the agents. Offline whatever
# the environment holds: the researcher agents, and no process of the lab sees ANTHROPIC_API_KEY (`lab start`
# alone offers Claude agents where the key is set, says what they would cost and asks).
lab: install
	$(BIN)/lab init
	$(BIN)/lab score --baselines
	$(BIN)/lab start --offline

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q

# the hf kind end to end on CPU in a few minutes: tiny models and data made offline, init, baselines, one submission
tiny: install
	cd examples/tiny && $(abspath $(BIN))/python make_tiny.py && $(abspath $(BIN))/lab init \
		&& $(abspath $(BIN))/lab score --baselines && $(abspath $(BIN))/lab score --method ../../lab/scaffold/template_hf

# after an edit in lab/scaffold/common/: copy the shared modules into each template again (a test checks them)
scaffold:
	$(BIN)/python -m lab.scaffold.copies

bench: install
	$(BIN)/python bench/bench_scorer.py
	$(BIN)/python bench/bench_lab.py --minutes 30
	$(BIN)/python bench/bench_tui.py
	$(BIN)/python bench/bench_responsive.py

.PHONY: install lab test bench scaffold tiny
