VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test venv clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY)
	$(PIP) install -q -e .

demo: venv
	$(VENV)/bin/muonlab run configs/demo.toml --out results/demo --report

test: $(PY)
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q 'torch==2.13.0' || echo "make test: torch 2.13.0 (CPU build) not installable here; the torch backend cases skip"
	$(VENV)/bin/ruff check .
	MPLBACKEND=Agg $(PY) -m pytest -n auto

clean:
	rm -rf results .pytest_cache
