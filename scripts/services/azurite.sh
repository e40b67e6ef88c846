#!/usr/bin/env bash
# Azurite (the Azure Storage emulator, Blob service only) for tests and local development.
#
#   azurite.sh install             npm-install azurite@3 under .services/azurite (idempotent)
#   azurite.sh start [DIR] [PORT]  run azurite-blob on 127.0.0.1:PORT (default 10000), data in DIR
#   azurite.sh stop [DIR]          stop the instance started with the same DIR
#   azurite.sh env [PORT]          print the connection string for devstoreaccount1
#
# DIR defaults to .services/azurite/data. The pidfile and log are kept in DIR.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix="$root/.services/azurite"
bin="$prefix/node_modules/.bin/azurite-blob"
version="3"
account="devstoreaccount1"
# The emulator's well-known key (public, documented by Microsoft): not a secret.
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

die() { echo "azurite.sh: $*" >&2; exit 1; }

connection_string() {
    local port=$1
    echo "DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$port/$account;"
}

install() {
    if [[ -x "$bin" ]]; then
        return 0
    fi
    command -v npm >/dev/null || die "npm is missing (apt-get install npm)"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$version" >&2
    [[ -x "$bin" ]] || die "npm install finished but $bin is missing"
}

answers() {
    # Any HTTP answer (even 400) means the server is up.
    local port=$1
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

start() {
    local dir=${1:-$prefix/data} port=${2:-10000}
    install
    mkdir -p "$dir"
    local pidfile="$dir/azurite.pid"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        die "already running (pid $(cat "$pidfile")); stop it first"
    fi
    "$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir" \
        --skipApiVersionCheck --disableTelemetry --loose \
        >"$dir/azurite.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 200); do
        if answers "$port"; then
            connection_string "$port"
            return 0
        fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$dir/azurite.log" >&2; die "azurite exited"; }
        sleep 0.05
    done
    cat "$dir/azurite.log" >&2
    die "azurite did not answer on port $port within 10 s"
}

stop() {
    local dir=${1:-$prefix/data}
    local pidfile="$dir/azurite.pid"
    [[ -f "$pidfile" ]] || return 0
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
}

cmd=${1:-}
shift || true
case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    env) connection_string "${1:-10000}" ;;
    *) die "usage: azurite.sh install | start [DIR] [PORT] | stop [DIR] | env [PORT]" ;;
esac
