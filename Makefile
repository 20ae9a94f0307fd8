# Two commands do everything on a machine with only python3: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format install clean docs

# Reinstall only when the project's definition changed.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/etc2calm demo

# The house style: CI fails on a finding (run `make format` to apply the formatter).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Every test, one after another (CI).
test: lint
	$(PY) -m pytest -q

# The everyday subset: every test but the slow ones, on two pytest-xdist workers (README, "Two commands");
# --dist loadfile keeps a test file on one worker, so a module's shared fixture is built once.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile

# Regenerate docs/warehouse.md and docs/export.md from the code's definitions (tests check they are current).
docs: $(STAMP)
	$(PY) -m etc2calm.docs
	$(PY) -m maps.export

clean:
	rm -rf $(VENV) data/warehouse build/demo
