# ivr - two commands do everything on a fresh Debian machine (as root, or with sudo):
#   make run    start a local Asterisk (chroot lab) and `ivr serve` on the sample flows
#   make test   install everything and run every test, the real-Asterisk ones included
#   make check  the edit-test loop: lint and the unit tests (tests/unit), in seconds
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(if $(filter 0,$(shell id -u)),,sudo)
APT_PACKAGES := debootstrap sip-tester sox espeak-ng zstd docker-compose graphviz dnsmasq-base \
                chromium chromium-driver postgresql prometheus podman
STAMP  := $(VENV)/.installed
CHARTJS_VERSION := 4.5.1
VENDOR_DIR := ivr/admin/static/vendor

.PHONY: run test test-future check deps venv lint bench clean vendor
include mk/lab.mk

# System packages for the lab (debootstrap), SIPp calls (sip-tester), audio (sox, espeak-ng),
# the static compose check (docker-compose), flow pictures (graphviz: dot), the dashboard's
# browser tests (chromium, chromium-driver), the store's second engine (postgresql), the
# FastAGI SRV records of the failover tests (dnsmasq-base) and promtool, which checks and
# unit-tests docker/prometheus/alerts.yml (prometheus) and the compose stack run for real
# (podman; podman-compose comes pinned from PyPI). Skipped when all are already there.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -yq $$missing; \
	fi

venv: $(STAMP)
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

test: deps venv
	$(BIN)/ivr validate flows/
	$(BIN)/pytest -q -ra

# The time-bomb guard: every test that needs no Asterisk, with the wall clock (this process
# and the Python processes it starts) 400+ days ahead, on a Saturday (tests/support/timeshift.py).
test-future: deps venv
	IVR_TEST_CLOCK_SHIFT_DAYS=400 $(BIN)/pytest -q -ra -m "not asterisk"

# The fast part, for the edit-test loop: ruff, mypy, the layer contracts and tests/unit (no
# sockets, processes, real engines or Asterisk; well under a minute). `make test` runs the rest:
# tests/integration, tests/browser and tests/e2e.
check: lint
	$(BIN)/pytest -q tests/unit

run: deps venv lab-up
	@echo
	@echo "Asterisk is up. Call sip:100@<this machine>:5060 (demo), 200 (bank), 300 (feedback)"
	@echo "or 400 (speech) with a softphone (user 1001, see asterisk-conf/README.md). Ops console:"
	@echo "http://127.0.0.1:8080/. Ctrl-C stops the server; 'make lab-down' stops Asterisk."
	@echo
	IVR_AMI_SECRET="$$($(BIN)/python -c 'from ivr.lab import Lab; print(Lab().ami_secret)')" \
		IVR_ADMIN_OPEN_READ=true $(BIN)/ivr serve

lint: venv
	$(BIN)/ruff check ivr tests benchmarks
	$(BIN)/ruff format --check ivr tests benchmarks scripts
	$(BIN)/mypy ivr
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python benchmarks/agi_load.py

# Re-fetch the dashboard's chart library from the npm registry (build time only; the committed
# file is what runs). Drops the sourceMappingURL comment: the map is not shipped.
vendor:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	npm pack --silent --pack-destination "$$tmp" chart.js@$(CHARTJS_VERSION) >/dev/null && \
	tar -xzf "$$tmp"/chart.js-$(CHARTJS_VERSION).tgz -C "$$tmp" && \
	sed '/^\/\/# sourceMappingURL=/d' "$$tmp/package/dist/chart.umd.js" \
		> $(VENDOR_DIR)/chart.umd.js && \
	cp "$$tmp/package/LICENSE.md" $(VENDOR_DIR)/chart.js.LICENSE.md && \
	echo "chart.js $(CHARTJS_VERSION) -> $(VENDOR_DIR)/chart.umd.js" && \
	sha256sum $(VENDOR_DIR)/chart.umd.js

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
