# mk/lab.mk - the chroot Asterisk lab (included by the main Makefile). Needs root.
# lab-up builds the tree once (debootstrap of Debian sid, cached as a zstd tarball under
# /var/cache/ivr-lab) and starts Asterisk; lab-down stops it and unmounts.
LAB_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: lab-up lab-down lab-status lab-test compose-deps

lab-up:
	$(LAB_PYTHON) -m ivr.lab up

lab-down:
	$(LAB_PYTHON) -m ivr.lab down

lab-status:
	$(LAB_PYTHON) -m ivr.lab status

# End-to-end tests through the real Asterisk (brings the lab up itself if needed).
lab-test:
	$(LAB_PYTHON) -m pytest -m asterisk tests/e2e -v

# tests/integration/test_compose.py runs `docker-compose config -q` (Debian's docker-compose 1.29).
compose-deps:
	@command -v docker-compose >/dev/null || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker-compose)
