# Every target installs what it needs first, so each works on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install chromium test run demo bench soak clean

# checkov pins many libraries of its own, so it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

install: $(STAMP) node_modules/.package-lock.json $(CHECKOV_STAMP)

$(CHECKOV_STAMP): infra/requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard's browser tests (tests/dashboard) drive Debian's Chromium through playwright
# (requirements-dev.txt; playwright's own browser download is not used). Installed here when
# missing, as root or with passwordless sudo, quietly; when it cannot be, this says so and the
# browser tests fail with the reason (they are never skipped).
DASHBOARD_CHROMIUM ?= /usr/bin/chromium
export DASHBOARD_CHROMIUM

chromium:
	@if [ ! -x "$(DASHBOARD_CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then as=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as="sudo -n"; \
	  else as=none; fi; \
	  if [ "$$as" = none ] || ! command -v apt-get >/dev/null 2>&1; then \
	    echo "warning: $(DASHBOARD_CHROMIUM) is missing and cannot be installed here (apt-get as root is needed:" \
	         "apt-get install chromium); the dashboard's browser tests will fail" >&2; \
	  else \
	    echo "Installing Chromium (Debian package chromium) for the dashboard's browser tests"; \
	    log=$$(mktemp); \
	    if $$as env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$$log" 2>&1 && \
	       $$as env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
	         >>"$$log" 2>&1 && [ -x "$(DASHBOARD_CHROMIUM)" ]; then rm -f "$$log"; \
	    else cat "$$log" >&2; rm -f "$$log"; \
	      echo "warning: installing chromium did not give $(DASHBOARD_CHROMIUM); the dashboard's browser tests" \
	           "will fail" >&2; fi; \
	  fi; \
	fi

test: install chromium
	$(PY) -m pytest -q

run: install
	$(PY) -m devstack run

demo: install
	$(PY) -m devstack demo

soak: install
	$(PY) -m pytest -q -m soak tests/reliability

# Figures, not assertions: one table on stdout, the same figures in bench-results/latest.json
# (BENCH_ARGS=--full for the long version).
bench: install
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .devstack
