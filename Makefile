# The two commands of the README. Both set everything up from nothing (a virtualenv in .venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup lint demo services clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,postgres]"
	touch $(STAMP)

setup: $(STAMP)

# The main job: crawl every enabled default source into data/dwatch.sqlite3, then show the queue.
run: $(STAMP)
	-$(BIN)/dwatch crawl
	$(BIN)/dwatch queue

# The whole flow offline, on the bundled sample site.
demo: $(STAMP)
	$(BIN)/dwatch demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# PostgreSQL and Redis on 127.0.0.1 (installed when missing; root or sudo): the servers of the
# PostgreSQL and Redis tests and of a one-machine scale-out. Prints the two lines to export.
services:
	scripts/services.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
