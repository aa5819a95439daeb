# The two commands: `make demo` and `make test`. Both set up .venv on first use.
# `make check` is the quick loop while working: lint, types and the tests not marked slow.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

NPM    := $(shell command -v npm 2>/dev/null)

.PHONY: demo test check lint types docs wheel pytest bench judgement fuzz clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "sweeper needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sweeper demo

test: lint types docs wheel pytest

# Not what CI runs (that is `make test`): the tests marked slow are left out (a local Graph,
# servers on loopback, child processes, a browser, Azurite, long loops; see tests/conftest.py)
# and each property runs 25 examples.
check: lint types
	$(BIN)/pytest -m "not slow" -n 2 -q --hypothesis-profile=check

lint: $(STAMP)
	$(BIN)/ruff check sweeper jobs tests tools
	$(BIN)/ruff format --check sweeper jobs tests tools

types: $(STAMP)
	$(BIN)/mypy sweeper tools

# The docs/ pages as a site (mkdocs.yml): a broken link or anchor, or a page left out of the
# nav, fails the build. A few seconds; the site is written to site/.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

# The wheel as users get it: built, installed with the constraints in a new virtual
# environment, and `sweeper demo` run outside the checkout (about a minute, most of it pip).
wheel: $(STAMP)
	tools/wheel_check.sh $(BIN)/python

# Azurite (the Azure Storage emulator) for the blob-state tests, from the npm registry.
# Without npm those tests are skipped and say so.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

# Three processes on two cores: most tests wait on local servers and subprocesses.
pytest: $(STAMP) $(if $(NPM),node_modules/.installed)
	$(BIN)/pytest -n 3

# Not part of `make test`: a few minutes on a 2-core machine; writes BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m tools.bench

# Not part of `make test`: how the severity rule fares against the labelled corpus
# (tests/fixtures/judgement/cases.toml), about a minute. A measurement: exits 0 whatever it
# finds; `make judgement JUDGEMENT="--half dev"` for the tuning half, "--strict" to fail.
judgement: $(STAMP)
	$(BIN)/python -m tools.judgement $(JUDGEMENT)

# Not part of `make test`: the parser and classifier properties with 10,000 examples each (9 minutes on 2 cores).
fuzz: $(STAMP)
	$(BIN)/pytest tests/test_fuzz.py tests/test_classify.py --hypothesis-profile=fuzz \
	  --hypothesis-show-statistics --timeout=0 -q -p no:cacheprovider

clean:
	rm -rf $(VENV) node_modules site .mypy_cache .pytest_cache .ruff_cache
