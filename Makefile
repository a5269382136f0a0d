# voicefleet: `make demo` runs the fleet on this machine, `make test` proves every part.
# Both install what is missing first (scripts/setup.sh, cached per user).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CACHE ?= $(or $(VOICEFLEET_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/voicefleet)
export VOICEFLEET_CACHE := $(CACHE)
export PATH := $(CACHE)/bin:$(PATH)
# The Python environment is shared by every clone (scripts/setup.sh); this clone's sources
# come first on the path whichever clone installed itself there last.
export PYTHONPATH := $(CURDIR)/models:$(CURDIR)/operator:$(CURDIR)/agent:$(CURDIR)/dashboards:$(CURDIR)/devstack
PY := .venv/bin/python
DENO := $(CACHE)/bin/deno
TOKEN_FN := supabase/functions/livekit-token

.PHONY: demo test setup images generate check-generated lint python-tests frontend-tests \
	deno-tests format constraints clean

demo: setup
	$(PY) -m voicefleet_devstack demo

test: setup
	@start=$$SECONDS; \
	for target in check-generated lint images python-tests frontend-tests deno-tests; do \
	  step=$$SECONDS; echo "==> make $$target"; \
	  $(MAKE) --no-print-directory $$target; \
	  echo "    $$target: $$((SECONDS - step))s"; \
	done; \
	echo "make test: every suite passed in $$((SECONDS - start))s"

setup:
	@scripts/setup.sh

# The operator and agent images from images/*.Dockerfile, built with buildah into OCI archives
# under $(CACHE)/images; unchanged sources rebuild nothing.
images: setup
	$(PY) -m voicefleet_devstack images

# Committed artifacts generated from one source, all by voicefleet_operator.generate: the CRD
# and configuration reference from the spec models; dashboards, recording rules and alerts from
# dashboards/voicefleet_dashboards; the kustomize base from the Helm chart (needs helm, hence
# setup).
generate: setup
	$(PY) -m voicefleet_operator.generate

check-generated:
	$(PY) -m voicefleet_operator.generate --check

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# pytest exits 5 when it collected nothing: for this suite that is a failure, not a pass.
python-tests:
	@rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

frontend-tests:
	cd frontend && npm run --silent typecheck && npm test

deno-tests:
	cd $(TOKEN_FN) && $(DENO) check index.ts && $(DENO) lint && $(DENO) fmt --check && $(DENO) test --allow-env --allow-net

# Benchmarks print their figures; e.g. `make bench-operator_reaction`.
bench-%: setup
	cd bench && ../$(PY) $*.py $(BENCH_ARGS)

format:
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

constraints:
	( echo "# Exact versions the test suite runs on; regenerate with 'make constraints'."; \
	  .venv/bin/pip freeze --exclude-editable | grep -v '^-e' | sort ) > constraints.txt

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache frontend/dist
