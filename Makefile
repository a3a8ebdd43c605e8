# fleetguard.webshield — two commands on a fresh Debian 12 machine (as root):
#   make demo   the lab fleet: three Apache containers attacked and defended
#   make test   every test, fast to slow, with a summary at the end
.PHONY: help setup image demo demo-clean test lint sanity unit integration molecule build clean

help:
	@echo "make demo        run the lab demo (installs what it needs)"
	@echo "make demo-clean  remove the lab containers"
	@echo "make test        all tests: setup, lint, sanity, unit, integration, build, molecule"
	@echo "make lint | sanity | unit | integration | build | molecule   one layer"

setup:
	bash scripts/setup.sh

image: setup
	bash scripts/build-image.sh

demo:
	bash lab/demo.sh

demo-clean:
	bash lab/demo-clean.sh

test:
	bash scripts/test.sh

lint sanity unit integration molecule build:
	bash scripts/test.sh setup $@

clean:
	rm -rf .cache .venv .venv-core216 .pytest_cache .ruff_cache .hypothesis tests/output
