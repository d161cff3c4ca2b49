# shellcheck shell=bash
# Helpers shared by scripts/services/postgres.sh and scripts/services/kafka.sh: logging,
# port checks, Debian package installation, the Python that runs scripts/kafka_probe.py.
# Sourced by scripts/services.sh (which sets ROOT and `set -euo pipefail`); not run on its own.

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
