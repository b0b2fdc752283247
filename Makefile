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
	@echo "make course    build the nbgrader course folder ./course (solutions + hidden tests -> release)"
	@echo "make grade A=01_self_attention   autograde submissions and export grades.csv"
	@echo "make course-demo A=...           demo: submit the reference solutions as a student, grade them"
	@echo "make student-book                the book without solutions, in _build/student/html"
	@echo "make pdf       the PDF edition through LaTeX: _build/latex/mha-course.pdf (TeX: see .ci/run)"
	@echo "make clean     remove _build and course"

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
	$(BIN)/jupyter nbconvert --to notebook --inplace --CoalesceStreamsPreprocessor.enabled=True $(NB)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Coursework (see instructors.md): an nbgrader course folder in ./course, grading, student edition.
A ?= 01_self_attention
.PHONY: course course-demo grade student-book
course: $(STAMP)
	$(BIN)/python -m mha.grading.coursework course

course-demo: $(STAMP)
	$(BIN)/python -m mha.grading.coursework demo $(A)

grade: $(STAMP)
	$(BIN)/python -m mha.grading.coursework grade $(A)

student-book: $(STAMP)
	$(BIN)/python -m mha.grading.student_edition

# The PDF edition through LaTeX (xelatex, latexmk; the Debian packages .ci/run installs).
.PHONY: pdf
pdf: $(STAMP)
	$(BIN)/jupyter-book build . --builder pdflatex
	test -s _build/latex/mha-course.pdf

clean:
	rm -rf _build course
