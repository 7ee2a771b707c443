# make book : run every notebook (profile $(PROFILE)) and build the HTML book
# make test : run the test suite
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PROFILE ?= quick

.PHONY: book test run-notebooks build check-book data clean clean-cache

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test,cluster]'
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/t2fsnn book --profile $(PROFILE)

# Run the notebooks only / build only (from the notebooks already in book/generated).
run-notebooks: $(STAMP)
	$(BIN)/t2fsnn book --no-build --profile $(PROFILE)

build: $(STAMP)
	$(BIN)/t2fsnn book --no-run

# Every page of the built book in headless Chromium, offline; screenshots in _build/screenshots/
# (needs Debian's chromium: apt-get install -y chromium).
check-book: $(STAMP)
	$(BIN)/python -m t2fsnn.book.browser _build/html --screenshots _build/screenshots

test: $(STAMP)
	$(BIN)/python -m pytest -q

data: $(STAMP)
	$(BIN)/t2fsnn data

clean:
	rm -rf _build book/generated

clean-cache:
	rm -rf .t2fsnn-cache data/.cache
