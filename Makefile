# `make run` and `make test` set up whatever is missing first; `make setup` only sets up.
.PHONY: setup run test lint bench bench-nlu bench-channels clean

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/python run.py serve --seed-orders shop/demo_orders.json

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

bench: setup
	.venv/bin/python bench/throughput.py

bench-nlu: setup
	.venv/bin/python bench/nlu.py --train

bench-channels: setup
	.venv/bin/python bench/channels.py

clean:
	rm -rf var models .pytest_cache .ruff_cache
