# Two commands: `make demo` and `make test`. Everything else is a helper for those.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CORE   := $(VENV)/.installed-core
DEV    := $(VENV)/.installed-dev
# checkov pins boto3==1.35.49 (this project: 1.44.8), so it gets a virtual environment of its own.
CHECKOV_VENV ?= .venv-checkov
CHECKOV := $(CHECKOV_VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20

.PHONY: install install-dev demo test lint audit audit-offline format data bench synth checkov clean

# The core (what `make demo` and users need): torch CPU, PyAV, numpy, pillow...
$(CORE): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(CORE)

# Tests, lint, AWS (moto, CDK, cdk-nag, cfn-lint) and the SageMaker SDK.
$(DEV): $(CORE) requirements-dev.txt requirements-aws.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(DEV)

$(CHECKOV): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV)

install: $(CORE)
install-dev: $(DEV) $(CHECKOV)

demo: $(CORE)
	$(PY) -m upscaler.demo --out out/demo

lint: $(DEV)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m bandit -q -r upscaler lambdas sagemaker -ll

# Known-vulnerability audit of the pinned runtime dependencies (needs PyPI's JSON API / OSV).
audit: $(DEV)
	$(PY) -m pip_audit -r requirements.txt -r requirements-aws.txt

# The same audit offline, against a local checkout of github.com/pypa/advisory-database
# (only as recent as that checkout); also audits every distribution installed in the venv.
ADVISORY_DB ?= ../advisory-database
audit-offline: $(DEV)
	$(PY) scripts/audit_offline.py --db $(ADVISORY_DB) -r requirements.txt -r requirements-aws.txt --installed

# The stack tests run cdk-nag, cfn-lint and checkov ($(CHECKOV_VENV)) over the synthesized template.
test: lint $(CHECKOV)
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest -q

format: $(DEV)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Training photos from Debian packages (licences in DATA_LICENSES.md, every file in
# docs/data_manifest.tsv) and the real-footage dev clips made from held-out photos.
DATA_PACKAGES := plasma-workspace-wallpapers mate-backgrounds lomiri-wallpapers gcompris-qt-data \
	endless-sky-data tuxpaint-data sddm-theme-maldives stellarium-data
data: $(CORE)
	apt-get install -y --no-install-recommends $(DATA_PACKAGES)
	$(PY) scripts/make_data.py
	$(PY) scripts/make_clips.py

bench: $(CORE)
	$(PY) -m benchmarks.speed

# CloudFormation via the pinned CDK CLI (the tests synthesize in-process without it).
synth: $(DEV)
	npm install --no-save aws-cdk@2.1148.1
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx cdk synth -o cdk.out

# checkov alone over a fresh synth (what the stack test does), with its report.
checkov: $(DEV) $(CHECKOV)
	$(PY) -c "from stacks.synth import synthesize; synthesize(outdir='cdk.out')"
	$(CHECKOV_VENV)/bin/checkov -f cdk.out/Upscaler.template.json --framework cloudformation \
		--compact --skip-download

clean:
	rm -rf out cdk.out .pytest_cache .ruff_cache
