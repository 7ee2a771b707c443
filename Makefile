# make book : run every notebook (profile $(PROFILE)) and build the HTML book
# make test : run the test suite
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PROFILE ?= quick

.PHONY: book test run-notebooks build data clean clean-cache

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[test]'
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/t2fsnn book --profile $(PROFILE)

# Run the notebooks only / build only (from the notebooks already in book/generated).
run-notebooks: $(STAMP)
	$(BIN)/python -c "from t2fsnn import runner; runner.run_book_notebooks('$(PROFILE)')"

build: $(STAMP)
	$(BIN)/t2fsnn book --no-run

test: $(STAMP)
	$(BIN)/python -m pytest -q

data: $(STAMP)
	$(BIN)/t2fsnn data

clean:
	rm -rf _build book/generated

clean-cache:
	rm -rf .t2fsnn-cache data/.cache
