# Two commands for newcomers: `make book` and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300
JB     := $(BIN)/jupyter-book build . -W -n --keep-going

.PHONY: help setup test book book-only execute lint format clean
help:
	@echo "make book      set up .venv, verify notebooks (strict nbval), build the book into _build/html"
	@echo "make test      set up .venv, run the whole test suite (unit tests, strict nbval, -W book build)"
	@echo "make lint      ruff check and format check"
	@echo "make execute   re-run notebooks in place (NB=chapters/01_self_attention.ipynb for one)"
	@echo "make clean     remove _build"

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest $(NBVAL) tests chapters

# The book is built from the notebooks' stored outputs (execute_notebooks: off),
# after strict nbval has re-run every notebook and matched those outputs.
book: $(STAMP)
	$(BIN)/pytest $(NBVAL) -q chapters
	$(JB)

book-only: $(STAMP)
	$(JB)

NB ?= chapters/*.ipynb
execute: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=300 $(NB)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf _build
