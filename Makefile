# Two commands do everything on a machine with only python3: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean docs

# Reinstall only when the project's definition changed.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/etc2calm demo

test: $(STAMP)
	$(PY) -m pytest -q

# Regenerate docs/warehouse.md and docs/export.md from the code's definitions (tests check they are current).
docs: $(STAMP)
	$(PY) -m etc2calm.docs
	$(PY) -m maps.export

clean:
	rm -rf $(VENV) data/warehouse build/demo
