# shellcheck shell=bash
# PostgreSQL: a local cluster in $STATE_DIR/pg (data/, postgres.log, sock/) running the
# newest installed server, plus the role and database that DATABASE_URL names.
# Entry points: pg_up, pg_down, pg_status. Sourced by scripts/services.sh after
# scripts/services/common.sh; uses DATABASE_URL, STATE_DIR, ROOT, PG_START_TIMEOUT.

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
# Sized for the project's 2-core, 24 GiB machines: a tick rewrites every open deal's scores,
# and the default 128 MB buffers and 1 GB of WAL between checkpoints throttle that.
shared_buffers = 1GB
max_wal_size = 4GB
checkpoint_timeout = 15min
work_mem = 32MB
maintenance_work_mem = 256MB
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

# The worker's role: LOGIN and nothing else. Migrations (run as the URL's role, the owner) grant
# it DML on the tables; it can create no table, index or role.
pg_ensure_worker_role() {
    log "ensuring the worker's role '$PG_WORKER_ROLE' (DML only, granted by migrations)"
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -U "$(pg_os_user)" -d postgres \
        -v role="$PG_WORKER_ROLE" -v pw="$PG_WORKER_PASSWORD" >/dev/null <<'SQL' || die "could not create role '$PG_WORKER_ROLE' (see above)"
SELECT format('CREATE ROLE %I', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')
\gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
SQL
}

pg_up() {
    parse_database_url
    pg_paths
    if pg_url_ok; then
        if [[ -f $PG_DATA/postmaster.pid ]] && kill -0 "$(pg_pid)" 2>/dev/null; then
            log "PostgreSQL: already running (local cluster, pid $(pg_pid)) at $PG_URL_SAFE"
            local want=""
            [[ -f $PG_DATA/PG_VERSION ]] && want="$(cat "$PG_DATA/PG_VERSION")"
            PG_BIN="$(find_pg_bin "$want")" && pg_ensure_worker_role
        else
            log "PostgreSQL: already reachable at $PG_URL_SAFE; starting nothing (its admin creates the worker role '$PG_WORKER_ROLE')"
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
    pg_ensure_worker_role
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
