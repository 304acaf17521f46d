# Two commands for a fresh machine: `make run` (demo on the embedded default) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DEBUG ?= 1

.PHONY: run test install lint format migrate seed browser

# The demo's offline CLIP (trained by seed_demo on the synthetic dataset); tests use no weights.
DEMO_CLIP := $(CURDIR)/var/weights/demo-clip-tiny.safetensors
run seed: export CLIP_MODEL_NAME ?= demo-clip-tiny
run seed: export CLIP_WEIGHTS_PATH ?= $(DEMO_CLIP)
run seed: export CLIP_WEIGHTS_CUSTOM ?= 1
# Quiet terminal: warnings and errors, plus seed_progress's bars (one per model).
run seed: export LOG_LEVEL ?= WARNING
# Each published model's quality-per-NFE curve (steps sweep) on its model page.
run seed: export STEPS_SWEEP_ON_PUBLISH ?= 1

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo "Starting web on http://127.0.0.1:8000 with a Celery worker and Celery beat. Ctrl-C stops all."
	$(BIN)/honcho start -f Procfile

test: $(STAMP) browser
	$(BIN)/pytest $(PYTEST_ARGS)

# Browser tests drive Debian's Chromium; install it when we can (root with apt), else they skip.
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is not installed: the browser tests will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
