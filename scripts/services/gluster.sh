#!/usr/bin/env bash
# A one-brick GlusterFS volume on 127.0.0.1 for tests and local development, and the FUSE client
# openbai mounts it with (a job's `mount -t glusterfs 127.0.0.1:/gv0` unmanaged file system).
#
#   gluster.sh install       apt-get install glusterfs-server glusterfs-client
#   gluster.sh start [DIR]   run a glusterd on 127.0.0.1:24007 serving volume gv0 (brick DIR/bricks/gv0)
#   gluster.sh stop [DIR]    stop the brick and glusterd started with the same DIR (files are kept)
#   gluster.sh env [DIR]     print its settings as shell assignments (OPENBAI_GLUSTER_*)
#
# DIR defaults to .services/gluster; glusterd's state is all in DIR (its own volfile, not
# /var/lib/glusterd): see src/openbai/storage/gluster_server.py. Port 24007 is fixed (the brick
# asks glusterd for its volume file there), so one such server runs on a machine at a time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
default_dir="$root/.services/gluster"
python="$root/.venv/bin/python"
[[ -x "$python" ]] || python=python3

die() { echo "gluster.sh: $*" >&2; exit 1; }

install() {
    if command -v glusterd >/dev/null && command -v gluster >/dev/null && command -v glusterfs >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends glusterfs-server glusterfs-client >/dev/null
    command -v glusterd >/dev/null || die "apt-get install finished but glusterd is missing"
}

run() {
    PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" "$python" -m openbai.storage.gluster_server "$@"
}

start() {
    local dir=${1:-$default_dir}
    install
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    run start "$dir"
}

stop() {
    local dir=${1:-$default_dir}
    [[ -d "$dir" ]] || return 0
    run stop "$dir"
}

env_of() {
    local dir=${1:-$default_dir}
    [[ -f "$dir/server.json" ]] || die "no GlusterFS server set up in $dir (gluster.sh start $dir)"
    run env "$dir"
}

cmd=${1:-}
shift || true
case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    env) env_of "$@" ;;
    *) die "usage: gluster.sh install | start [DIR] | stop [DIR] | env [DIR]" ;;
esac
