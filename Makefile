# The commands the README names. `make demo` and `make test` both set up .venv first;
# the set-up is skipped when nothing it depends on has changed.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gradnap-installed
DEMO   := build/demo

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO)

# Two pytest workers (one per core of the 2-core machine), one torch thread each.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --durations=10 tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks

clean:
	rm -rf $(VENV) build
