#!/usr/bin/env bash
# The main job from a fresh clone: install, start PostgreSQL and Kafka, migrate, run the worker,
# feed it the sample deal event stream and print the scored deals.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/bootstrap.sh
bash scripts/services.sh up >/dev/null
eval "$(bash scripts/services.sh env)"
export REVINTEL_LOG_JSON="${REVINTEL_LOG_JSON:-true}"

.venv/bin/revintel migrate
mkdir -p .services
log=.services/worker-demo.log
.venv/bin/revintel run >"$log" 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null || true' EXIT

.venv/bin/revintel produce-sample --timeout 120
.venv/bin/revintel show --prefix D-10   # the sample's deals
echo "worker log: $log   services keep running: bash scripts/services.sh status|down" >&2
