# `make run` and `make test` set up whatever is missing first; `make setup` only sets up.
.PHONY: setup run test lint bench bench-nlu bench-routes bench-ocr bench-ocr-documents bench-channels bench-backoffice bench-ivr bench-quality bench-peak bench-callbacks bench-store clean

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/python run.py serve --seed-orders shop/demo_orders.json --demo-staff --demo-quality

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

bench: setup
	.venv/bin/python bench/throughput.py

bench-store: setup
	.venv/bin/python bench/store_growth.py

bench-nlu: setup
	.venv/bin/python bench/nlu.py --train

# Route planning only needs the gateway venv (about 9 minutes: 2 backends x (30 s + 2 x 120 s)).
bench-routes:
	@test -x .venv/bin/python || { echo "bench-routes: run 'make setup' first" >&2; exit 1; }
	.venv/bin/python bench/routes.py

bench-ocr: setup
	.venv/bin/python bench/ocr.py --per-damage 6

# Waybills, VAT invoices and slips: real held-out photos (from ../shared/data/ocr-real or
# OCR_REAL_PHOTOS), generated ones, and the queue's latency from upload to fields on the ticket.
bench-ocr-documents: setup
	.venv/bin/python bench/ocr_documents.py

bench-channels: setup
	.venv/bin/python bench/channels.py

bench-backoffice: setup
	.venv/bin/python bench/backoffice.py

# The quality dashboard's summary over 20,000 synthetic events (read and group, three runs).
bench-quality: setup
	.venv/bin/python bench/quality_dashboard.py

# Phone IVR: accuracy and real-time factor per engine, simultaneous calls, reply latency (~10 min).
bench-ivr: setup
	.venv/bin/python bench/ivr.py

# Downstream callbacks: per second and acknowledgement time at 1 and 16 senders, then every one replayed.
bench-callbacks: setup
	.venv/bin/python bench/callbacks.py

# Promotion peak: 2000 customers on four channels over real gateway processes, exactly-once
# checks, then `run.py report peak`. QUICK=1 for 200 customers; PEAK_ARGS for more options.
bench-peak: setup
	.venv/bin/python bench/peak.py $(if $(QUICK),--quick) $(PEAK_ARGS)

clean:
	rm -rf var models .pytest_cache .ruff_cache
