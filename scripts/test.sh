#!/usr/bin/env bash
# The project's one test command: README and CI call exactly this.
#
#   scripts/test.sh [cargo test arguments...]
#   scripts/test.sh --run COMMAND [ARGS...]     (e.g. a benchmark that needs the server)
#
# Starts a throwaway PostgreSQL 15 server (so event-log-postgres tests run against a
# real server), exports EVENT_LOG_TEST_PG_URL, runs
# `cargo test --workspace --all-features "$@"` (without --workspace when the
# arguments pick packages, e.g. `scripts/test.sh -p event-log-postgres`; with no
# arguments, also bft-json-crdt's tests without its default `aws-lc` signer, and
# `cargo package --workspace`: every crate packages for publishing), then always
# stops the server and removes its directory, exiting with cargo's exit code.
#
# To use your own server instead, set EVENT_LOG_TEST_PG_URL (for example
# postgres://user:password@127.0.0.1:5432/db); nothing is started then. Tests
# create and drop their own schemas in that database.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# `cargo test --workspace --all-features "$@"`; when the arguments name packages
# (`-p NAME`, `--package NAME`), only those are tested: cargo would otherwise let
# --workspace override them.
run_tests() {
    # `scripts/test.sh --run CMD...` runs CMD beside the throwaway server instead of
    # the tests (e.g. `scripts/test.sh --run cargo bench -p event-log-postgres`).
    if [[ "${1:-}" == "--run" ]]; then
        shift
        local status=0
        "$@" || status=$?
        return "$status"
    fi
    local scope=(--workspace) arg
    for arg in "$@"; do
        [[ "$arg" == "--" ]] && break
        case "$arg" in
            -p | -p?* | --package | --package=*) scope=() ;;
        esac
    done
    local status=0
    cargo test "${scope[@]}" --all-features "$@" || status=$?
    if [[ $# -eq 0 && "$status" -eq 0 ]]; then
        # The signer without the default `aws-lc` feature (ed25519-dalek), which the
        # run above, with every feature on, never builds.
        cargo test -p bft-json-crdt --no-default-features || status=$?
    fi
    if [[ $# -eq 0 && "$status" -eq 0 ]]; then
        # Every crate packages as it would publish (manifests, metadata, included
        # files, versioned dependencies, in dependency order). Building the packaged
        # sources again doubles the run; EVENT_LOG_PACKAGE_VERIFY=1 does it.
        local verify=(--no-verify)
        [[ "${EVENT_LOG_PACKAGE_VERIFY:-}" == 1 ]] && verify=()
        cargo package --workspace --allow-dirty "${verify[@]}" || status=$?
    fi
    return "$status"
}

if [[ -n "${EVENT_LOG_TEST_PG_URL:-}" ]]; then
    echo "test.sh: using the PostgreSQL server from EVENT_LOG_TEST_PG_URL (starting none)"
    status=0
    run_tests "$@" || status=$?
    exit "$status"
fi

# --- find the server binaries ----------------------------------------------------
pg_bindir=""
if command -v pg_config >/dev/null 2>&1; then
    candidate="$(pg_config --bindir 2>/dev/null || true)"
    if [[ -x "$candidate/initdb" && -x "$candidate/pg_ctl" && -x "$candidate/postgres" ]]; then
        pg_bindir="$candidate"
    fi
fi
if [[ -z "$pg_bindir" && -x /usr/lib/postgresql/15/bin/initdb ]]; then
    pg_bindir=/usr/lib/postgresql/15/bin
fi
if [[ -z "$pg_bindir" ]]; then
    echo "test.sh: error: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found." >&2
    echo "test.sh: install the 'postgresql-15' package (e.g. apt-get install postgresql-15)," >&2
    echo "test.sh: or set EVENT_LOG_TEST_PG_URL to a server you run yourself." >&2
    exit 2
fi
pg_isready_bin="$pg_bindir/pg_isready"
[[ -x "$pg_isready_bin" ]] || pg_isready_bin="$(command -v pg_isready || true)"
if [[ -z "$pg_isready_bin" ]]; then
    echo "test.sh: error: pg_isready not found; install the 'postgresql-15' package." >&2
    exit 2
fi

# --- who runs the server -----------------------------------------------------------
# postgres refuses to run as root: as root, run it as the unprivileged `postgres` user
# (created if missing); otherwise as ourselves.
as_server_user=()
server_user="$(id -un)"
if [[ "$(id -u)" -eq 0 ]]; then
    server_user=postgres
    if ! id -u "$server_user" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$server_user"
    fi
    as_server_user=(runuser -u "$server_user" --)
fi

# --- a free loopback port ------------------------------------------------------------
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local port
    for port in $(seq 54320 54420); do
        if ! ss -Htln "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
    echo "test.sh: error: no free port found in 54320..54420" >&2
    return 1
}

# --- start the throwaway server -----------------------------------------------------
tmp_dir="$(mktemp -d "${TMPDIR:-/tmp}/event-log-pg.XXXXXX")"
data_dir="$tmp_dir/data"
log_file="$tmp_dir/server.log"
server_started=0

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ "$server_started" -eq 1 ]]; then
        "${as_server_user[@]}" "$pg_bindir/pg_ctl" -D "$data_dir" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp_dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "$(id -u)" -eq 0 ]]; then
    chown "$server_user" "$tmp_dir"
fi
chmod 700 "$tmp_dir"

port="$(free_port)"
echo "test.sh: starting PostgreSQL from $pg_bindir on 127.0.0.1:$port (as $server_user)"

# The superuser initdb creates is named after the user running it.
"${as_server_user[@]}" "$pg_bindir/initdb" -D "$data_dir" -U "$server_user" \
    -A trust --no-sync --encoding=UTF8 --locale=C >"$tmp_dir/initdb.log" 2>&1 || {
    echo "test.sh: error: initdb failed:" >&2
    cat "$tmp_dir/initdb.log" >&2
    exit 1
}

# Loopback only, sockets inside the temp dir. fsync=off (and no full-page writes or
# synchronous commit) is acceptable here: this server is thrown away after the run,
# and durability across a power loss is not what these tests check.
server_opts="-c listen_addresses=127.0.0.1 -p $port -k $tmp_dir"
server_opts+=" -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
server_opts+=" -c max_connections=200"
# Set before starting: if start half-succeeds, cleanup still stops the server.
server_started=1
"${as_server_user[@]}" "$pg_bindir/pg_ctl" -D "$data_dir" -l "$log_file" \
    -o "$server_opts" -w -t 30 start >/dev/null || {
    echo "test.sh: error: PostgreSQL failed to start; server log:" >&2
    cat "$log_file" >&2 || true
    exit 1
}

ready=0
for _ in $(seq 1 60); do
    if "$pg_isready_bin" -q -h 127.0.0.1 -p "$port" -U "$server_user"; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ "$ready" -ne 1 ]]; then
    echo "test.sh: error: PostgreSQL did not become ready within 30 s; server log:" >&2
    cat "$log_file" >&2 || true
    exit 1
fi

export EVENT_LOG_TEST_PG_URL="postgres://$server_user@127.0.0.1:$port/postgres"

status=0
run_tests "$@" || status=$?
exit "$status"
