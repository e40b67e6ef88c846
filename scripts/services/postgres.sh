#!/usr/bin/env bash
# A private PostgreSQL cluster (Debian's packages) for tests and local development: its own
# data directory, run as the postgres user, listening on 127.0.0.1 only, password login.
#
#   postgres.sh install             apt-get install postgresql (idempotent)
#   postgres.sh start DIR [PORT]    initdb (first time) and start the cluster, state in DIR;
#                                   prints the URL of its database "openbai" (user "openbai")
#   postgres.sh stop DIR            stop the cluster started with the same DIR
#   postgres.sh url DIR             print that URL again
#
# PORT defaults to a free one. The password is made at initdb and kept in DIR/password (0600).
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n "$dir" && -x "$dir/pg_ctl" ]] || return 1
    echo "$dir"
}

install() {
    if bindir >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # postgresql-common would create and start a system-wide cluster: we only want the binaries
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir >/dev/null || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/pg_ctl"
}

# run a command as the postgres user (the cluster refuses to run as root)
as_postgres() {
    if [[ $(id -un) == postgres ]]; then
        "$@"
    else
        runuser -u postgres -- "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

url() {
    local dir=$1
    [[ -f "$dir/password" && -f "$dir/port" ]] || die "no cluster in $dir (start it first)"
    echo "postgresql+psycopg://openbai:$(cat "$dir/password")@127.0.0.1:$(cat "$dir/port")/openbai"
}

start() {
    local dir=${1:?usage: postgres.sh start DIR [PORT]} port=${2:-}
    install
    local bin
    bin=$(bindir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local data="$dir/data"
    if [[ -f "$data/postmaster.pid" ]] && as_postgres "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1; then
        die "already running in $dir; stop it first"
    fi
    [[ -n "$port" ]] || port=$(free_port)
    echo "$port" >"$dir/port"
    # the postgres user must reach the data directory: open the path to it for traversal only
    local up="$dir"
    while [[ "$up" != / ]]; do
        chmod o+x "$up" 2>/dev/null || true
        up=$(dirname "$up")
    done
    if [[ ! -f "$data/PG_VERSION" ]]; then
        (umask 077; python3 -c 'import secrets; print(secrets.token_hex(16))' >"$dir/password")
        mkdir -p "$data" && chown postgres: "$data" && chmod 700 "$data"
        local pwfile="$dir/initdb.pw"
        (umask 077; cat "$dir/password" >"$pwfile") && chown postgres: "$pwfile"
        as_postgres "$bin/initdb" -D "$data" -U openbai --pwfile="$pwfile" \
            --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        rm -f "$pwfile"
    fi
    # sockets in the data directory, not /var/run/postgresql (which may not exist); the tests
    # create a database for each test, so they need more connections than the default 100
    as_postgres "$bin/pg_ctl" start -D "$data" -w -t 60 -l "$data/postgres.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data \
            -c max_connections=300 -c fsync=off -c synchronous_commit=off" \
        >/dev/null || { tail -n 30 "$data/postgres.log" >&2; die "the cluster did not start"; }
    if ! PGPASSWORD=$(cat "$dir/password") "$bin/psql" -h 127.0.0.1 -p "$port" -U openbai \
        -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'openbai'" | grep -q 1; then
        PGPASSWORD=$(cat "$dir/password") "$bin/createdb" -h 127.0.0.1 -p "$port" -U openbai openbai
    fi
    url "$dir"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    local data="$dir/data"
    [[ -f "$data/postmaster.pid" ]] || return 0
    as_postgres "$(bindir)/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
}

case "${1:-}" in
    install) install ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    url) shift; url "$@" ;;
    *) die "usage: postgres.sh install | start DIR [PORT] | stop DIR | url DIR" ;;
esac
