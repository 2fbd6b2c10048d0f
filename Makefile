# suture: one entry point for set-up, tests, the demo and the benchmarks.
# Every target installs what it needs on a fresh machine (pip into .venv; apt-get when root).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.suture-installed

.PHONY: help system-deps venv test lint demo bench stage0 firmware clean

help:
	@echo "make venv    the Python environment: .venv/bin/suture (the CLI), pytest, ruff, mypy"
	@echo "make demo    run the ward simulator (scheduler on SQLite + simulated devices)"
	@echo "make test    install everything and run the whole suite (lint, types, all markers)"
	@echo "make bench   run the benchmarks; tables on stdout, JSON in bench/results/"
	@echo "make stage0  build stage0 for the QEMU boards and the host"
	@echo "make firmware BOARD=qemu-mps2-an385   MicroPython + frozen loader, signed (build/firmware/BOARD)"
	@echo "     MICROPYTHON_VERSION=1.27.0   from the previous MicroPython (build/firmware/BOARD-micropython-1.27.0)"
	@echo "make lint    ruff + mypy only"

system-deps:
	@tools/install-system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,boards]'
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: system-deps $(STAMP)
	@tools/run-tests.sh

demo: system-deps $(STAMP)
	@tools/run-demo.sh

bench: system-deps $(STAMP)
	$(BIN)/python -m bench

stage0: system-deps
	$(MAKE) -C stage0

BOARD ?= qemu-mps2-an385
MICROPYTHON_VERSION ?= 1.28.0
firmware: system-deps $(STAMP)
	$(MAKE) -C stage0
	$(BIN)/suture firmware build --board $(BOARD) --micropython-version $(MICROPYTHON_VERSION)

clean:
	rm -rf $(VENV) stage0/build bench/results .pytest_cache .mypy_cache .ruff_cache .hypothesis
