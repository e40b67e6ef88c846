#!/usr/bin/env bash
# nfs-ganesha as a userspace NFS server (v3 and v4) for tests and local development, and the
# userspace clients openbai mounts NFS with (libnfs; these nodes have no NFS in the kernel).
#
#   nfs.sh install               apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind libnfs13 libnfs-utils
#   nfs.sh start [DIR] [PORT]    run a ganesha exporting DIR/data at /mnt/data on 127.0.0.1:PORT
#   nfs.sh stop [DIR]            stop the instance started with the same DIR
#   nfs.sh env [DIR]             print its settings as shell assignments (OPENBAI_NFS_*)
#
# DIR defaults to .services/nfs. The server is the one `bai file-server create` runs
# (src/openbai/storage/nfs_server.py): ganesha.conf, server.json and the log are in DIR.
# ganesha needs rpcbind (port 111, machine-wide): it is started when none answers.
# Read it with libnfs-utils: nfs-ls "nfs://127.0.0.1/mnt/data?version=3&nfsport=P&mountport=M"
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
default_dir="$root/.services/nfs"
python="$root/.venv/bin/python"
[[ -x "$python" ]] || python=python3

die() { echo "nfs.sh: $*" >&2; exit 1; }

install() {
    if command -v ganesha.nfsd >/dev/null && command -v rpcbind >/dev/null &&
        command -v nfs-ls >/dev/null && [[ -d /usr/lib/x86_64-linux-gnu/ganesha || -d /usr/lib/ganesha ]] &&
        ldconfig -p | grep -q 'libnfs.so.13'; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nfs-ganesha nfs-ganesha-vfs rpcbind libnfs13 libnfs-utils >/dev/null
    command -v ganesha.nfsd >/dev/null || die "apt-get install finished but ganesha.nfsd is missing"
}

start() {
    local dir=${1:-$default_dir} port=${2:-0}
    install
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" "$python" -m openbai.storage.nfs_server start "$dir" "$port"
}

stop() {
    local dir=${1:-$default_dir}
    [[ -d "$dir" ]] || return 0
    PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" "$python" -m openbai.storage.nfs_server stop "$dir"
}

env_of() {
    local dir=${1:-$default_dir}
    [[ -f "$dir/server.json" ]] || die "no NFS server set up in $dir (nfs.sh start $dir)"
    PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" "$python" -m openbai.storage.nfs_server env "$dir"
}

cmd=${1:-}
shift || true
case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    env) env_of "$@" ;;
    *) die "usage: nfs.sh install | start [DIR] [PORT] | stop [DIR] | env [DIR]" ;;
esac
