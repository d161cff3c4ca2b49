#!/usr/bin/env bash
# The whole test suite against real services: install, start PostgreSQL and Kafka, lint, test.
# Extra arguments go to pytest (e.g. -k merge, or tests/unit).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/bootstrap.sh
bash scripts/services.sh up >/dev/null
bash scripts/services.sh kafka-jars # tests/kafka/test_sasl_ssl.py starts a broker of its own
eval "$(bash scripts/services.sh env)"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest "$@"
