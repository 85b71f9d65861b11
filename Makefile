# Two set-up commands on a fresh machine: `make lab` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
# torch 2.13's CPU build; on a machine with a GPU, override: make lab TORCH=torch
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

# Every package but torch is installed at the version its lockfile pins: requirements/lab.lock (the runtime) and
# requirements/test.lock (the runtime with the test and Ray extras). torch is left out of both so that TORCH can
# choose its build; `make lock` resolves them against TORCH's CPU build, for CPython 3.11 on x86-64 Linux.
LAB_LOCK := requirements/lab.lock
TEST_LOCK := requirements/test.lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# A venv made before the distribution was named w2s-lab holds this tree as `lab` too; two installs of it would
# both claim the `lab` command.
FORGET_OLD_NAME = $(BIN)/pip uninstall -q -y lab 2>/dev/null || true

$(VENV)/.installed-lab: $(LAB_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)" -r $(LAB_LOCK)
	$(FORGET_OLD_NAME)
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(TEST_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)" -r $(TEST_LOCK)
	$(FORGET_OLD_NAME)
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed-lab

install-test: $(VENV)/.installed-test

# The lab on the embedded default: prepare the testbed, score the baselines, start the agents. Offline whatever
# the environment holds: the researcher agents, and no process of the lab sees ANTHROPIC_API_KEY (`lab start`
# alone offers Claude agents where the key is set, says what they would cost and asks).
lab: install
	$(BIN)/lab init
	$(BIN)/lab score --baselines
	$(BIN)/lab start --offline

# mypy checks lab/ as pyproject.toml's [tool.mypy] says
test: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

# the hf kind end to end on CPU in a few minutes: tiny models and data made offline, init, baselines, one submission
tiny: install
	cd examples/tiny && $(abspath $(BIN))/python make_tiny.py && $(abspath $(BIN))/lab init \
		&& $(abspath $(BIN))/lab score --baselines && $(abspath $(BIN))/lab score --method ../../lab/scaffold/template_hf

# after an edit in lab/scaffold/common/: copy the shared modules into each template again (a test checks them)
scaffold:
	$(BIN)/python -m lab.scaffold.copies

bench: install-test
	$(BIN)/python bench/bench_scorer.py
	$(BIN)/python bench/bench_lab.py --minutes 30
	$(BIN)/python bench/bench_tui.py
	$(BIN)/python bench/bench_responsive.py

# Refresh both lockfiles from pyproject.toml with uv (a pinned release, installed into the venv), which resolves
# the whole tree in seconds and writes pip-readable files; the test lock keeps the runtime lock's pins, so that
# `make test` after `make lab` adds packages and changes none. torch's CPU wheels are found through pip's
# find-links where this machine sets them (PIP_FIND_LINKS), else on PyTorch's CPU index. uv keeps the pins a lock
# already has where pyproject.toml still allows them: `make lock LOCK_FLAGS=--upgrade` moves all to the newest.
UV_VERSION ?= 0.13.9
LOCK_FLAGS ?=
TORCH_WHEELS ?= $(or $(PIP_FIND_LINKS),https://download.pytorch.org/whl/cpu/torch/)
COMPILE = echo "$(TORCH)" | $(BIN)/uv pip compile pyproject.toml --quiet -c /dev/stdin --find-links $(TORCH_WHEELS) \
	--python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-emit-package torch \
	--custom-compile-command "make lock" $(LOCK_FLAGS)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/pip install -q "uv==$(UV_VERSION)"

lock: | $(BIN)/uv
	@mkdir -p requirements
	$(COMPILE) -o $(LAB_LOCK)
	$(COMPILE) --extra test --extra ray -c $(LAB_LOCK) -o $(TEST_LOCK)

.PHONY: install install-test lab test bench lock scaffold tiny
