# bertscope: `make run` starts the dashboard on the embedded model; `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
ARGS ?=
BIN := $(VENV)/bin

.PHONY: run test install install-dev frontend lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/bertscope serve $(ARGS)

test:
	bash scripts/test.sh

frontend:
	cd frontend && npm ci --no-audit --no-fund && npm test && npm run build

lint: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) frontend/node_modules
