# Two commands: `make demo` and `make test`. Everything else is a helper for those.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format data bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m upscaler.demo --out out/demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest -q

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Training photos from Debian packages (licences in DATA_LICENSES.md).
data: $(STAMP)
	apt-get install -y --no-install-recommends plasma-workspace-wallpapers mate-backgrounds lomiri-wallpapers
	$(PY) scripts/make_data.py

bench: $(STAMP)
	$(PY) -m upscaler.cli bench --models bicubic,fast --size 426x240

clean:
	rm -rf out .pytest_cache .ruff_cache
