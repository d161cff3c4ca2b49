#!/usr/bin/env bash
# Local PostgreSQL + single-node Kafka (KRaft) for development, tests and CI.
#
#   scripts/services.sh up       provision + start whatever is not reachable yet, then
#                                print the settings as shell exports on stdout
#   scripts/services.sh down     stop what this script started (data stays in .services/)
#   scripts/services.sh status   report both services; exit 0 only if both are reachable
#   scripts/services.sh env      print only the export lines:  eval "$(scripts/services.sh env)"
#
# Settings (environment):
#   DATABASE_URL             postgresql://revintel:revintel@127.0.0.1:5432/revintel
#   KAFKA_BOOTSTRAP_SERVERS  127.0.0.1:9092
#   KAFKA_CONTROLLER_PORT    9093   (KRaft controller listener of the local broker)
#   KAFKA_HEAP_OPTS          -Xms256m -Xmx768m
#   KAFKA_JVM_OPTS           extra JVM options for the local broker (default none)
#   KAFKA_START_TIMEOUT      90     seconds to wait for the broker to answer
#   PG_START_TIMEOUT         60     seconds to wait for PostgreSQL to accept connections
#   SERVICES_STATE_DIR       <repo>/.services
#
# If a service already answers at its setting, it is used as is and nothing is started
# for it. Otherwise the script installs what is missing (Debian packages `postgresql`,
# `default-jdk-headless`, `maven`), creates a PostgreSQL cluster in .services/pg/data
# and a Kafka broker (Apache Kafka jars from Maven Central, services/kafka/pom.xml)
# with data in .services/kafka/data. Progress goes to stderr, prefixed "[services]".
set -euo pipefail

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

KAFKA_SRC="$ROOT/services/kafka"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID_FILE="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
KAFKA_CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"

# ----------------------------------------------------------------------------- helpers

log() { printf '[services] %s\n' "$*" >&2; }
die() {
    printf '[services] ERROR: %s\n' "$*" >&2
    exit 1
}
is_root() { [[ $(id -u) -eq 0 ]]; }
now() { date +%s; }

# Port open on host? (bash /dev/tcp, 2 s timeout)
port_open() {
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 2 bash -c ': <"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

is_local_host() {
    case "$1" in
        127.0.0.1 | localhost) return 0 ;;
        *) return 1 ;;
    esac
}

# Who listens on a TCP port (best effort, for error messages).
port_owner() {
    if command -v ss >/dev/null 2>&1; then
        ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/^/    /' || true
    fi
}

APT_UPDATED=0
apt_install() {
    local sudo=()
    if ! is_root; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "need to install Debian packages ($*) but not root and no passwordless sudo; install them yourself and re-run"
        fi
    fi
    command -v apt-get >/dev/null 2>&1 || die "need packages ($*) but apt-get is not available; install them yourself and re-run"
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
            die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >&2 ||
        die "apt-get install $* failed"
}

# Interpreter for the stdlib-only Kafka probe.
python_bin() {
    local c
    for c in /usr/bin/python3 "$ROOT/.venv/bin/python" "$(command -v python3 || true)"; do
        if [[ -n $c && -x $c ]]; then
            printf '%s\n' "$c"
            return 0
        fi
    done
    return 1
}

# ----------------------------------------------------------------------------- PostgreSQL

parse_database_url() {
    local re='^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/?]+)(:([0-9]+))?/([^?/]+)(\?.*)?$'
    [[ $DATABASE_URL =~ $re ]] ||
        die "cannot parse DATABASE_URL='$DATABASE_URL' (expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME)"
    PG_USER="${BASH_REMATCH[2]}"
    PG_PASSWORD="${BASH_REMATCH[4]}"
    PG_HOST="${BASH_REMATCH[5]}"
    PG_PORT="${BASH_REMATCH[7]:-5432}"
    PG_DB="${BASH_REMATCH[8]}"
    # percent-decoding (user, password, db may be URL-encoded)
    PG_USER="$(printf '%b' "${PG_USER//%/\\x}")"
    PG_PASSWORD="$(printf '%b' "${PG_PASSWORD//%/\\x}")"
    PG_DB="$(printf '%b' "${PG_DB//%/\\x}")"
    PG_URL_SAFE="${DATABASE_URL/":${BASH_REMATCH[4]}@"/:***@}"
}

# Directory with the newest PostgreSQL server binaries (or the version of an existing cluster).
find_pg_bin() {
    local want="${1:-}" d
    if [[ -n $want && -x /usr/lib/postgresql/$want/bin/postgres ]]; then
        printf '%s\n' "/usr/lib/postgresql/$want/bin"
        return 0
    fi
    [[ -n $want ]] && return 1
    d="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
        sed 's#/initdb$##' | sort -V | tail -n 1)"
    if [[ -n $d ]]; then
        printf '%s\n' "$d"
        return 0
    fi
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

psql_bin() {
    if [[ -n ${PG_BIN:-} && -x $PG_BIN/psql ]]; then
        printf '%s\n' "$PG_BIN/psql"
    elif command -v psql >/dev/null 2>&1; then
        command -v psql
    else
        local b
        b="$(find_pg_bin)" || return 1
        [[ -x $b/psql ]] || return 1
        printf '%s\n' "$b/psql"
    fi
}

# Can we log in with DATABASE_URL? Sets PG_CONNECT_ERROR on failure.
pg_url_ok() {
    local psql
    PG_CONNECT_ERROR=""
    psql="$(psql_bin)" || {
        PG_CONNECT_ERROR="psql not installed"
        return 1
    }
    if PG_CONNECT_ERROR="$(PGCONNECT_TIMEOUT=5 "$psql" "$DATABASE_URL" -XAtq -c 'select 1' 2>&1 >/dev/null)"; then
        return 0
    fi
    PG_CONNECT_ERROR="$(printf '%s' "$PG_CONNECT_ERROR" | tr -s '\n\t' '  ')"
    return 1
}

ensure_pg_binaries() {
    local want=""
    if [[ -f $PG_DATA/PG_VERSION ]]; then
        want="$(cat "$PG_DATA/PG_VERSION")"
    fi
    if PG_BIN="$(find_pg_bin "$want")"; then
        return 0
    fi
    if [[ -n $want ]]; then
        if find_pg_bin >/dev/null; then
            die "$PG_DATA was created by PostgreSQL $want, whose server binaries are not installed" \
                "(found $(find_pg_bin)). Install postgresql-$want, or remove $PG_DIR to start over."
        fi
    fi
    log "no PostgreSQL server binaries found; installing Debian's postgresql"
    # Keep Debian from creating (and starting) its own 'main' cluster on port 5432.
    apt_install postgresql-common
    if [[ -f /etc/postgresql-common/createcluster.conf ]]; then
        local s=()
        is_root || s=(sudo -n)
        "${s[@]}" sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
            /etc/postgresql-common/createcluster.conf
    fi
    apt_install postgresql
    PG_BIN="$(find_pg_bin "$want")" || die "PostgreSQL installed but no server binaries found under /usr/lib/postgresql"
}

# PostgreSQL refuses to run as root: as root, the cluster belongs to the 'postgres' user.
pg_os_user() {
    if is_root; then printf 'postgres\n'; else id -un; fi
}

as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Sets PG_DIR, PG_DATA, PG_LOG, PG_SOCK_DIR (no side effects).
pg_paths() {
    PG_DIR="$STATE_DIR/pg"
    if [[ -L $PG_DIR ]]; then
        PG_DIR="$(readlink -f "$PG_DIR")"
    fi
    PG_DATA="$PG_DIR/data"
    PG_LOG="$PG_DIR/postgres.log"
    PG_SOCK_DIR="$PG_DIR/sock"
    # Unix socket paths are limited to ~107 bytes.
    if ((${#PG_SOCK_DIR} > 90)); then
        PG_SOCK_DIR="/tmp/revintel-pg-$(printf '%s' "$PG_DIR" | sha256sum | cut -c1-12)"
    fi
}

# Create the state dir for PostgreSQL; as root, make sure the postgres user can reach it.
pg_prepare_dirs() {
    mkdir -p "$STATE_DIR"
    if is_root; then
        id postgres >/dev/null 2>&1 ||
            useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        if [[ ! -e $STATE_DIR/pg ]] && ! runuser -u postgres -- test -x "$STATE_DIR" 2>/dev/null; then
            # The repo lives where 'postgres' cannot go (e.g. under /root): keep the cluster elsewhere.
            local alt
            alt="/var/tmp/revintel-services-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)/pg"
            log "user 'postgres' cannot reach $STATE_DIR; keeping the cluster in $alt"
            mkdir -p "$alt"
            chmod 755 "$(dirname "$alt")"
            ln -sfn "$alt" "$STATE_DIR/pg"
        fi
    fi
    pg_paths
    mkdir -p "$PG_DIR" "$PG_SOCK_DIR"
    chmod 700 "$PG_SOCK_DIR"
    if is_root; then
        chown postgres: "$PG_DIR" "$PG_SOCK_DIR"
        [[ -d $PG_DATA ]] && chown -R postgres: "$PG_DATA"
        [[ -f $PG_LOG ]] && chown postgres: "$PG_LOG"
    fi
    return 0
}

pg_running() {
    [[ -f $PG_DATA/postmaster.pid && -n ${PG_BIN:-} ]] || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_pid() {
    if [[ -f $PG_DATA/postmaster.pid ]]; then
        head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true
    fi
}

pg_initdb() {
    local locale="C"
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        locale="C.UTF-8"
    fi
    log "initdb $PG_DATA (PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), locale $locale)"
    mkdir -p "$PG_DATA"
    chmod 700 "$PG_DATA"
    is_root && chown postgres: "$PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$(pg_os_user)" --encoding=UTF8 --locale="$locale" \
        --auth-local=trust --auth-host=scram-sha-256 >>"$PG_LOG.initdb" 2>&1 ||
        die "initdb failed; see $PG_LOG.initdb"
    printf "\n# Added by scripts/services.sh: settings it regenerates on every start.\ninclude_if_exists = 'revintel.conf'\n" \
        >>"$PG_DATA/postgresql.conf"
}

# Regenerated before every start (port / socket dir follow the current settings).
pg_write_conf() {
    cat >"$PG_DATA/revintel.conf" <<EOF
# Generated by scripts/services.sh on every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK_DIR'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 128MB
# Durability stays on: the project tests it.
fsync = on
synchronous_commit = on
full_page_writes = on
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
    is_root && chown postgres: "$PG_DATA/revintel.conf"
    return 0
}

pg_start() {
    pg_write_conf
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT (log $PG_LOG)"
    # 9>&-: the server must not inherit (and so hold forever) this script's lock.
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_START_TIMEOUT" start >/dev/null 2>&1 9>&- || {
        tail -n 30 "$PG_LOG" >&2 2>/dev/null || true
        die "PostgreSQL did not start (log above, full log: $PG_LOG)"
    }
}

# Create/refresh the URL's role (LOGIN, CREATEDB, password) and database.
pg_ensure_role_db() {
    log "ensuring role '$PG_USER' and database '$PG_DB'"
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -U "$(pg_os_user)" -d postgres \
        -v role="$PG_USER" -v pw="$PG_PASSWORD" -v db="$PG_DB" >/dev/null <<'SQL' || die "could not create role/database (see above)"
SELECT format('CREATE ROLE %I', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')
\gexec
ALTER ROLE :"role" WITH LOGIN CREATEDB PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL
}

pg_up() {
    parse_database_url
    pg_paths
    if pg_url_ok; then
        if [[ -f $PG_DATA/postmaster.pid ]] && kill -0 "$(pg_pid)" 2>/dev/null; then
            log "PostgreSQL: already running (local cluster, pid $(pg_pid)) at $PG_URL_SAFE"
        else
            log "PostgreSQL: already reachable at $PG_URL_SAFE; starting nothing"
        fi
        return 0
    fi
    is_local_host "$PG_HOST" ||
        die "DATABASE_URL=$PG_URL_SAFE is not reachable ($PG_CONNECT_ERROR) and its host '$PG_HOST' is not local, so no server can be started for it. Fix DATABASE_URL, or unset it to get a local server."

    local t0
    t0=$(now)
    pg_prepare_dirs
    ensure_pg_binaries

    if pg_running; then
        log "PostgreSQL: local cluster runs (pid $(pg_pid)) but DATABASE_URL does not log in ($PG_CONNECT_ERROR)"
    else
        if port_open 127.0.0.1 "$PG_PORT"; then
            log "port 127.0.0.1:$PG_PORT is in use:"
            port_owner "$PG_PORT" >&2
            die "something already listens on 127.0.0.1:$PG_PORT but does not accept DATABASE_URL=$PG_URL_SAFE ($PG_CONNECT_ERROR). Either create that role/database in it, stop it (e.g. 'pg_ctlcluster <version> main stop'), or point DATABASE_URL at a free port (e.g. postgresql://revintel:revintel@127.0.0.1:55432/revintel) to get a separate local server."
        fi
        if [[ ! -f $PG_DATA/PG_VERSION ]]; then
            pg_initdb
        fi
        pg_start
    fi
    pg_ensure_role_db
    pg_url_ok || die "PostgreSQL started but DATABASE_URL=$PG_URL_SAFE still fails: $PG_CONNECT_ERROR"
    log "PostgreSQL: ready at $PG_URL_SAFE (pid $(pg_pid), $(($(now) - t0)) s)"
}

pg_down() {
    pg_paths
    if [[ ! -f $PG_DATA/postmaster.pid ]]; then
        log "PostgreSQL: local cluster not running"
        return 0
    fi
    local want=""
    [[ -f $PG_DATA/PG_VERSION ]] && want="$(cat "$PG_DATA/PG_VERSION")"
    PG_BIN="$(find_pg_bin "$want")" || die "cannot find PostgreSQL $want binaries to stop $PG_DATA"
    if ! pg_running; then
        log "PostgreSQL: stale postmaster.pid, server not running"
        return 0
    fi
    log "stopping PostgreSQL (pid $(pg_pid))"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null ||
        die "pg_ctl stop failed; see $PG_LOG"
    log "PostgreSQL: stopped"
}

pg_status() {
    parse_database_url
    pg_paths
    local pid state="NOT reachable" ok=1
    if pg_url_ok; then
        state="reachable"
        ok=0
    fi
    pid="$(pg_pid)"
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        echo "postgres: $state at $PG_URL_SAFE; local cluster running, pid $pid, data $PG_DATA, log $PG_LOG"
    elif ((ok == 0)); then
        echo "postgres: $state at $PG_URL_SAFE; not started by this script"
    else
        echo "postgres: $state at $PG_URL_SAFE ($PG_CONNECT_ERROR); local cluster not running"
    fi
    return $ok
}

# ----------------------------------------------------------------------------- Kafka

parse_kafka_bootstrap() {
    local first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
    first="${first#PLAINTEXT://}"
    [[ $first =~ ^([^:]+):([0-9]+)$ ]] ||
        die "cannot parse KAFKA_BOOTSTRAP_SERVERS='$KAFKA_BOOTSTRAP_SERVERS' (expected HOST:PORT)"
    KAFKA_HOST="${BASH_REMATCH[1]}"
    KAFKA_PORT="${BASH_REMATCH[2]}"
}

# Does a Kafka broker answer on host:port? Sends ApiVersions and Metadata requests
# (stdlib only) and requires at least one registered broker. Prints a summary.
kafka_probe() {
    local host="$1" port="$2" py
    port_open "$host" "$port" || {
        KAFKA_PROBE_MSG="port $host:$port closed"
        return 1
    }
    py="$(python_bin)" || {
        # No Python: fall back to the broker's own log line.
        if [[ -f $KAFKA_LOG ]] && grep -q 'Kafka Server started' "$KAFKA_LOG"; then
            return 0
        fi
        KAFKA_PROBE_MSG="port open, no python3 to probe it"
        return 1
    }
    KAFKA_PROBE_MSG="$("$py" - "$host" "$port" 2>&1 <<'PY'
import socket
import struct
import sys

host, port = sys.argv[1], int(sys.argv[2])
CLIENT = b"revintel-services-probe"


def recvn(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed by peer")
        buf += chunk
    return buf


def call(sock, api_key, version, cid, body=b""):
    msg = struct.pack(">hhih", api_key, version, cid, len(CLIENT)) + CLIENT + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", recvn(sock, 4))
    data = recvn(sock, size)
    if struct.unpack(">i", data[:4])[0] != cid:
        raise OSError("not a Kafka response (correlation id mismatch)")
    return data[4:]


def string(data, off):
    (n,) = struct.unpack_from(">h", data, off)
    off += 2
    if n < 0:
        return None, off
    return data[off : off + n].decode(), off + n


try:
    with socket.create_connection((host, port), timeout=3) as s:
        s.settimeout(5)
        r = call(s, 18, 0, 1)  # ApiVersions v0
        (err,) = struct.unpack_from(">h", r, 0)
        if err:
            sys.exit(f"ApiVersions error code {err}")
        # Metadata v4: all topics (null array), no auto-creation.
        r = call(s, 3, 4, 2, struct.pack(">ib", -1, 0))
        _throttle, nbrokers = struct.unpack_from(">ii", r, 0)
        off = 8
        brokers = []
        for _ in range(nbrokers):
            (node,) = struct.unpack_from(">i", r, off)
            bhost, off = string(r, off + 4)
            (bport,) = struct.unpack_from(">i", r, off)
            _rack, off = string(r, off + 4)
            brokers.append(f"{node}@{bhost}:{bport}")
        cluster_id, off = string(r, off)
        if not brokers:
            sys.exit("broker answers but no broker is registered yet")
        print(f"brokers {','.join(brokers)}, cluster {cluster_id}")
except (OSError, struct.error, UnicodeDecodeError) as e:
    sys.exit(f"{type(e).__name__}: {e}")
PY
)" && return 0
    return 1
}

kafka_pid_alive() {
    local pid
    [[ -f $KAFKA_PID_FILE ]] || return 1
    pid="$(cat "$KAFKA_PID_FILE" 2>/dev/null)"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    KAFKA_PID="$pid"
}

java_major() {
    local v
    v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
    v="${v#1.}"
    printf '%s\n' "${v%%[.+-]*}"
}

ensure_java_maven() {
    local pkgs=()
    command -v java >/dev/null 2>&1 || pkgs+=(default-jdk-headless)
    command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
    if ((${#pkgs[@]})); then
        log "missing: ${pkgs[*]}"
        apt_install "${pkgs[@]}"
    fi
    local major
    major="$(java_major)"
    if ! [[ $major =~ ^[0-9]+$ ]] || ((major < 17)); then
        die "Kafka 4.x brokers need Java 17+, but 'java' is version '${major:-unknown}' ($(command -v java)). Put a JDK 17+ first on PATH."
    fi
}

kafka_resolve_libs() {
    local hash
    hash="$(sha256sum "$KAFKA_SRC/pom.xml" | cut -c1-64)"
    if [[ -f $KAFKA_LIBS/.pom.sha256 && $(cat "$KAFKA_LIBS/.pom.sha256") == "$hash" ]] &&
        compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
        return 0
    fi
    local t0
    t0=$(now)
    log "resolving Kafka broker jars from Maven Central (services/kafka/pom.xml -> $KAFKA_LIBS)"
    rm -rf "$KAFKA_LIBS.tmp"
    if ! mvn -B -q -f "$KAFKA_SRC/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$KAFKA_LIBS.tmp" >"$KAFKA_DIR/maven.log" 2>&1; then
        tail -n 40 "$KAFKA_DIR/maven.log" >&2
        die "Maven could not resolve services/kafka/pom.xml (output above, full log: $KAFKA_DIR/maven.log)"
    fi
    compgen -G "$KAFKA_LIBS.tmp/kafka_2.13-*.jar" >/dev/null ||
        die "Maven finished but no kafka_2.13 jar in $KAFKA_LIBS.tmp"
    printf '%s\n' "$hash" >"$KAFKA_LIBS.tmp/.pom.sha256"
    rm -rf "$KAFKA_LIBS"
    mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
    log "resolved $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $(($(now) - t0)) s"
}

# The broker JVM command line (without main class) in KAFKA_CMD.
kafka_cmd() {
    local heap=() extra=()
    read -r -a heap <<<"$KAFKA_HEAP_OPTS"
    read -r -a extra <<<"$KAFKA_JVM_OPTS"
    KAFKA_CMD=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$KAFKA_SRC/log4j2.yaml" "-Dkafka.logs.dir=$KAFKA_DIR"
        "${extra[@]}" -cp "$KAFKA_LIBS/*")
}

kafka_java() {
    kafka_cmd
    "${KAFKA_CMD[@]}" "$@"
}

kafka_write_props() {
    local esc_dirs
    esc_dirs="$(printf '%s' "$KAFKA_DATA" | sed 's/[&#\\]/\\&/g')"
    sed -e "s#@KAFKA_HOST@#$KAFKA_HOST#g" \
        -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" \
        -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
        -e "s#@KAFKA_LOG_DIRS@#$esc_dirs#g" \
        "$KAFKA_SRC/server.properties" >"$KAFKA_PROPS.tmp"
    {
        printf '\n# Generated by scripts/services.sh from services/kafka/server.properties; edits are overwritten.\n'
    } >>"$KAFKA_PROPS.tmp"
    mv "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
}

kafka_format() {
    if [[ -f $KAFKA_DATA/meta.properties ]]; then
        return 0
    fi
    local cid
    if [[ -s $KAFKA_CLUSTER_ID_FILE ]]; then
        cid="$(cat "$KAFKA_CLUSTER_ID_FILE")"
    else
        cid="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -n 1)"
        [[ $cid =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid gave '$cid'; see $KAFKA_LOG"
        printf '%s\n' "$cid" >"$KAFKA_CLUSTER_ID_FILE"
    fi
    log "formatting Kafka storage $KAFKA_DATA (cluster id $cid)"
    mkdir -p "$KAFKA_DATA"
    kafka_java kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1 || {
        tail -n 30 "$KAFKA_LOG" >&2
        die "kafka StorageTool format failed (log above, full log: $KAFKA_LOG)"
    }
}

kafka_wait_ready() {
    local pid="$1" t0="$2" deadline
    deadline=$((t0 + KAFKA_START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$KAFKA_PID_FILE"
            log "Kafka exited during startup; last lines of $KAFKA_LOG:"
            tail -n 40 "$KAFKA_LOG" >&2 || true
            die "Kafka broker (pid $pid) exited during startup"
        fi
        if kafka_probe "$KAFKA_HOST" "$KAFKA_PORT"; then
            log "Kafka: ready at $KAFKA_HOST:$KAFKA_PORT ($KAFKA_PROBE_MSG; pid $pid, $(($(now) - t0)) s)"
            return 0
        fi
        if (($(now) >= deadline)); then
            log "Kafka not answering after ${KAFKA_START_TIMEOUT} s ($KAFKA_PROBE_MSG); last lines of $KAFKA_LOG:"
            tail -n 40 "$KAFKA_LOG" >&2 || true
            die "Kafka broker (pid $pid) did not become ready within ${KAFKA_START_TIMEOUT} s (it is left running; 'scripts/services.sh down' stops it)"
        fi
        sleep 1
    done
}

kafka_up() {
    parse_kafka_bootstrap
    KAFKA_PROBE_MSG=""
    if kafka_probe "$KAFKA_HOST" "$KAFKA_PORT"; then
        if kafka_pid_alive; then
            log "Kafka: already running (local broker, pid $KAFKA_PID) at $KAFKA_HOST:$KAFKA_PORT"
        else
            log "Kafka: already reachable at $KAFKA_HOST:$KAFKA_PORT ($KAFKA_PROBE_MSG); starting nothing"
        fi
        return 0
    fi
    is_local_host "$KAFKA_HOST" ||
        die "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is not reachable ($KAFKA_PROBE_MSG) and '$KAFKA_HOST' is not local, so no broker can be started for it. Fix it, or unset it to get a local broker."
    [[ $KAFKA_HOST == localhost ]] && KAFKA_HOST=127.0.0.1

    local t0
    t0=$(now)
    mkdir -p "$KAFKA_DIR"
    if kafka_pid_alive; then
        log "Kafka: local broker (pid $KAFKA_PID) is running but not answering yet; waiting"
        kafka_wait_ready "$KAFKA_PID" "$t0"
        return 0
    fi
    rm -f "$KAFKA_PID_FILE"
    local p
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_open 127.0.0.1 "$p"; then
            log "port 127.0.0.1:$p is in use:"
            port_owner "$p" >&2
            die "127.0.0.1:$p is taken by something that is not a working Kafka broker ($KAFKA_PROBE_MSG). Stop it, or pick free ports for a separate local broker: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<port> KAFKA_CONTROLLER_PORT=<port>"
        fi
    done

    ensure_java_maven
    kafka_resolve_libs
    kafka_write_props
    # Keep one previous log around.
    [[ -f $KAFKA_LOG ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
    kafka_format

    log "starting Kafka $(basename "$(compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" | head -n 1)" .jar) on $KAFKA_HOST:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT, log $KAFKA_LOG)"
    # setsid + nohup: the broker outlives this script and the shell/CI step that ran it.
    # No job control here, so the subshell is no process-group leader: setsid and nohup
    # exec in place and $! is the JVM's pid.
    kafka_cmd
    # 9>&-: the broker must not inherit (and so hold forever) this script's lock.
    (cd "$KAFKA_DIR" && exec setsid nohup "${KAFKA_CMD[@]}" kafka.Kafka "$KAFKA_PROPS" </dev/null >>"$KAFKA_LOG" 2>&1 9>&-) &
    local pid=$!
    printf '%s\n' "$pid" >"$KAFKA_PID_FILE"
    kafka_wait_ready "$pid" "$t0"
}

kafka_down() {
    if ! kafka_pid_alive; then
        if [[ -f $KAFKA_PID_FILE ]]; then
            log "Kafka: stale pid file, broker not running"
            rm -f "$KAFKA_PID_FILE"
        else
            log "Kafka: local broker not running"
        fi
        return 0
    fi
    local pid="$KAFKA_PID" i
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "Kafka did not stop within 60 s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$KAFKA_PID_FILE"
    log "Kafka: stopped"
}

kafka_status() {
    parse_kafka_bootstrap
    local ok=1 state="NOT reachable"
    KAFKA_PROBE_MSG=""
    if kafka_probe "$KAFKA_HOST" "$KAFKA_PORT"; then
        ok=0
        state="reachable"
    fi
    if kafka_pid_alive; then
        echo "kafka: $state at $KAFKA_HOST:$KAFKA_PORT (${KAFKA_PROBE_MSG}); local broker running, pid $KAFKA_PID, data $KAFKA_DATA, log $KAFKA_LOG"
    elif ((ok == 0)); then
        echo "kafka: $state at $KAFKA_HOST:$KAFKA_PORT (${KAFKA_PROBE_MSG}); not started by this script"
    else
        echo "kafka: $state at $KAFKA_HOST:$KAFKA_PORT (${KAFKA_PROBE_MSG}); local broker not running"
    fi
    return $ok
}

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

usage() {
    sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
