#!/usr/bin/env bash
# Debian packages the test suite needs (FUSE, OpenMPI and mpi4py for the jobs' real MPI
# programs, bubblewrap for job sandboxes, nginx for the reverse-proxy tests, Chromium for the
# web tests), installed once; the service scripts (scripts/services/*.sh install) add their own.
set -euo pipefail
pkgs=(fuse3 openmpi-bin python3-mpi4py iproute2 socat procps util-linux bubblewrap nginx nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
        missing+=("$p")
    fi
done
# node/npm may come from elsewhere than Debian (they do on these machines)
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
    echo "system-packages: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the unprivileged user jobs run as when openbai runs as root (runtime/sandbox.py)
if [ "$(id -u)" = 0 ] && ! getent passwd openbai-job >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin openbai-job
fi
