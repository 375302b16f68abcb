# The few commands a newcomer needs. Everything runs in ./.venv (created on demand).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
EXTRAS ?= dev,server,audio,webrtc,aec,report
# The demo needs the local server and matplotlib for its picture: no PortAudio, test or
# benchmark tools.
DEMO_EXTRAS ?= server,report

# No built-in rules: the install stamps below must never match make's implicit ones.
MAKEFLAGS += -r
.SUFFIXES:

# The stamp's name: the extras, or "base" for none (a pattern stem cannot be empty).
stamp = $(VENV)/.installed-$(or $(1),base)

.PHONY: install demo test lint typecheck pytest bench clean

# One stamp per set of extras, so `make demo` after `make test` (or before) installs only
# what is missing.
$(VENV)/.installed-%: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e $(if $(filter-out base,$*),'.[$*]',.)
	@touch '$@'

install: $(call stamp,$(EXTRAS))  ## create .venv and install the package with its extras

demo: $(call stamp,$(DEMO_EXTRAS))  ## offline end-to-end replay of the bundled spoken WAV (no key, sound card or network)
	$(BIN)/realtime-replay examples/data/hello.wav --out out/demo --speed 4 \
		--responder script:examples/data/demo_script.json

lint: install  ## ruff
	$(BIN)/ruff check .

typecheck: install  ## mypy --strict on both packages and the examples
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/*.py examples/browser/*.py

pytest: install  ## the test suite
	$(BIN)/pytest

test: lint typecheck pytest  ## everything CI checks

bench: install  ## benchmarks (pinned to one core where taskset exists)
	OMP_NUM_THREADS=1 $(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist out
