#!/usr/bin/env bash
# Local PostgreSQL + single-node Kafka (KRaft) for development, tests and CI.
#
#   scripts/services.sh up       provision + start whatever is not reachable yet, then
#                                print the settings as shell exports on stdout
#   scripts/services.sh down     stop what this script started (data stays in .services/)
#   scripts/services.sh status   report both services; exit 0 only if both are reachable
#   scripts/services.sh env      print only the export lines:  eval "$(scripts/services.sh env)"
#   scripts/services.sh kafka-jars  install the broker jars only (tests start brokers of their own)
#
# Settings (environment):
#   DATABASE_URL             postgresql://revintel:revintel@127.0.0.1:5432/revintel
#   KAFKA_BOOTSTRAP_SERVERS  127.0.0.1:9092
#   KAFKA_CONTROLLER_PORT    9093   (KRaft controller listener of the local broker)
#   KAFKA_HEAP_OPTS          -Xms256m -Xmx768m
#   KAFKA_JVM_OPTS           extra JVM options for the local broker (default none)
#   KAFKA_START_TIMEOUT      90     seconds to wait for the broker to answer
#   PG_START_TIMEOUT         60     seconds to wait for PostgreSQL to accept connections
#   PG_WORKER_ROLE           revintel_worker  the worker's role: LOGIN only, DML granted by migrations
#   PG_WORKER_PASSWORD       (the role's name) its password (local clusters only)
#   SERVICES_STATE_DIR       <repo>/.services
#
# If a service already answers at its setting, it is used as is and nothing is started
# for it. Otherwise the script installs what is missing (Debian packages `postgresql`,
# `default-jdk-headless`, `maven`), creates a PostgreSQL cluster in .services/pg/data
# and a Kafka broker (Apache Kafka jars from Maven Central, services/kafka/pom.xml)
# with data in .services/kafka/data. Progress goes to stderr, prefixed "[services]".
set -euo pipefail

# The work is done by functions in scripts/services/ (common.sh: helpers; postgres.sh: pg_*;
# kafka.sh: kafka_*, which runs scripts/kafka_probe.py). This file holds the settings and
# the commands; only it is run, the others are sourced.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STATE_DIR="${SERVICES_STATE_DIR:-$ROOT/.services}"

DEFAULT_DATABASE_URL="postgresql://revintel:revintel@127.0.0.1:5432/revintel"
DEFAULT_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9092"
DATABASE_URL="${DATABASE_URL:-$DEFAULT_DATABASE_URL}"
KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-$DEFAULT_KAFKA_BOOTSTRAP_SERVERS}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
# The worker's least-privilege role (DML on the tables only); the tests run the worker as it.
PG_WORKER_ROLE="${PG_WORKER_ROLE:-revintel_worker}"
PG_WORKER_PASSWORD="${PG_WORKER_PASSWORD:-$PG_WORKER_ROLE}"

# shellcheck source=SCRIPTDIR/services/common.sh
source "$ROOT/scripts/services/common.sh"
# shellcheck source=SCRIPTDIR/services/postgres.sh
source "$ROOT/scripts/services/postgres.sh"
# shellcheck source=SCRIPTDIR/services/kafka.sh
source "$ROOT/scripts/services/kafka.sh"

# ----------------------------------------------------------------------------- commands

print_env() {
    printf 'export DATABASE_URL=%q\n' "$DATABASE_URL"
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "$KAFKA_BOOTSTRAP_SERVERS"
}

take_lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w 600 9 || die "another scripts/services.sh is still running (lock $STATE_DIR/.lock)"
}

# The help is the header comment of this file, lines 2-27.
usage() {
    sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
        up)
            take_lock
            local t0
            t0=$(now)
            pg_up
            kafka_up
            log "all services up ($(($(now) - t0)) s). Settings:"
            print_env
            ;;
        down)
            take_lock
            kafka_down
            pg_down
            ;;
        status)
            local rc=0
            pg_status || rc=1
            kafka_status || rc=1
            return $rc
            ;;
        env)
            print_env
            ;;
        kafka-jars)
            take_lock
            kafka_jars
            ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
