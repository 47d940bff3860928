# The two commands of the README, and a few conveniences.
.PHONY: up test setup bench deploy-check

setup:  ## install system servers if missing, uv, and the locked .venv
	bash scripts/bootstrap.sh

up: setup  ## start the embedded local stack and serve the API on http://127.0.0.1:8000
	.venv/bin/templator up --demo

test:  ## ruff, mypy --strict and the whole test suite against real servers
	bash scripts/test.sh

bench: setup  ## every benchmark, each beside its raw baseline
	for b in benchmarks/bench_*.py; do .venv/bin/python -m benchmarks.$$(basename $$b .py) || exit 1; done

deploy-check: setup  ## start deploy/docker-compose.yml for real (offline, root) and prove it
	bash scripts/deploy-check.sh $(ARGS)
