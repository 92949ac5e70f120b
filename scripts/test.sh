#!/usr/bin/env bash
# The project's one test command: README and CI call exactly this.
#
#   scripts/test.sh [cargo test arguments...]
#   scripts/test.sh --run COMMAND [ARGS...]     (e.g. a benchmark that needs the server)
#
# Starts a throwaway PostgreSQL 15 server (so event-log-postgres tests run against a
# real server) that speaks TLS too (a throwaway CA and a server certificate for
# 127.0.0.1 and localhost, made with `openssl` in the server's temp dir; plain
# connections keep working), exports EVENT_LOG_TEST_PG_URL and EVENT_LOG_TEST_PG_CA
# (the path of that CA's certificate, PEM), runs
# `cargo test --workspace --all-features "$@"` (without --workspace when the
# arguments pick packages, e.g. `scripts/test.sh -p event-log-postgres`; with no
# arguments, also bft-json-crdt's tests without its default `aws-lc` signer, and
# `cargo package --workspace`: every crate packages for publishing; and the README's
# quick start: `cargo install --path event-log-cli`, `evlog demo`, `evlog show`), then always
# stops the server and removes its directory, exiting with cargo's exit code.
#
# To use your own server instead, set EVENT_LOG_TEST_PG_URL (for example
# postgres://user:password@127.0.0.1:5432/db); nothing is started then. Tests
# create and drop their own schemas in that database. The TLS tests then need
# EVENT_LOG_TEST_PG_CA too: the CA certificate (PEM) the server's certificate, valid
# for the URL's host, chains to.
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
    if [[ $# -eq 0 && "$status" -eq 0 ]]; then
        quick_start || status=$?
    fi
    return "$status"
}

# The README's quick start, as a new user runs it: `cargo install --path
# event-log-cli`, then `evlog demo` in an empty directory and the `evlog show` line it
# prints. The install is a debug build sharing the tests' target directory (a
# release build would double the run); EVENT_LOG_INSTALL_RELEASE=1 builds it as the
# README's line does.
quick_start() {
    local dir profile=(--debug)
    dir="$(mktemp -d)"
    [[ "${EVENT_LOG_INSTALL_RELEASE:-}" == 1 ]] && profile=()
    local target="${CARGO_TARGET_DIR:-$repo_root/target}"
    echo "test.sh: quick start: cargo install --path event-log-cli (into $dir/root)"
    if ! cargo install --locked --quiet "${profile[@]}" --path event-log-cli \
        --root "$dir/root" --target-dir "$target"; then
        echo "test.sh: error: the README's install line failed" >&2
        rm -rf "$dir"
        return 1
    fi
    local out show status=0
    mkdir "$dir/work"
    out="$(cd "$dir/work" && PATH="$dir/root/bin:$PATH" EVLOG_LOG=off evlog demo)" || status=$?
    show="$(printf '%s\n' "$out" | grep -o 'evlog show --store [^ ]*' | tail -1 || true)"
    if [[ "$status" -ne 0 || -z "$show" ]]; then
        echo "test.sh: error: evlog demo failed or printed no 'evlog show' line:" >&2
        printf '%s\n' "$out" >&2
        rm -rf "$dir"
        return 1
    fi
    # The printed command, word for word (it names only the demo's file).
    local shown
    shown="$(cd "$dir/work" && PATH="$dir/root/bin:$PATH" EVLOG_LOG=off $show)" || status=$?
    if [[ "$status" -ne 0 ]] || ! grep -q 'were dropped' <<<"$shown"; then
        echo "test.sh: error: '$show' failed or showed no gap line:" >&2
        printf '%s\n' "$shown" >&2
        rm -rf "$dir"
        return 1
    fi
    echo "test.sh: quick start ok: evlog demo, then '$show' ($(wc -l <<<"$shown") lines)"
    rm -rf "$dir"
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

# --- a throwaway CA and server certificate (for TLS) ---------------------------------
if ! command -v openssl >/dev/null 2>&1; then
    echo "test.sh: error: openssl not found (it makes the test server's TLS certificate);" >&2
    echo "test.sh: install the 'openssl' package, or set EVENT_LOG_TEST_PG_URL (and" >&2
    echo "test.sh: EVENT_LOG_TEST_PG_CA) to a server you run yourself." >&2
    exit 2
fi
tls_dir="$tmp_dir/tls"
mkdir -p "$tls_dir"
make_certificates() {
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=event-log test CA" \
        -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" &&
        openssl req "${ec[@]}" -subj "/CN=localhost" \
            -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" &&
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" >"$tls_dir/server.ext" &&
        openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.crt" \
            -CAkey "$tls_dir/ca.key" -CAcreateserial -days 2 \
            -extfile "$tls_dir/server.ext" -out "$tls_dir/server.crt"
}
make_certificates >"$tmp_dir/openssl.log" 2>&1 || {
    echo "test.sh: error: making the test server's TLS certificate with openssl failed:" >&2
    cat "$tmp_dir/openssl.log" >&2
    exit 1
}
# The CA's key is not needed any more; the server's must be its own, mode 0600.
rm -f "$tls_dir/ca.key" "$tls_dir/server.csr" "$tls_dir/ca.srl"
chmod 600 "$tls_dir/server.key"
chmod 644 "$tls_dir/server.crt" "$tls_dir/ca.crt"
chmod 755 "$tls_dir"
if [[ "$(id -u)" -eq 0 ]]; then
    chown "$server_user" "$tls_dir/server.key" "$tls_dir/server.crt"
fi

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
# TLS offered (sslmode=prefer, libpq's default, takes it), never required.
server_opts+=" -c ssl=on -c ssl_cert_file=$tls_dir/server.crt -c ssl_key_file=$tls_dir/server.key"
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
export EVENT_LOG_TEST_PG_CA="$tls_dir/ca.crt"

status=0
run_tests "$@" || status=$?
exit "$status"
