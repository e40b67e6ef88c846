#!/usr/bin/env bash
# Create .venv (if needed) and install openbai into it with the given extras (default: dev;
# "runtime": openbai and what it needs to run, no extras).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=${1:-dev}
python=${PYTHON:-python3}
if [[ ! -x "$root/.venv/bin/python" ]]; then
    "$python" -m venv "$root/.venv"
    "$root/.venv/bin/pip" install -q --upgrade pip
fi
# a venv made for development keeps its extras (it has everything the runtime needs)
if [[ "$extras" == runtime && -f "$root/.venv/.openbai-dev.stamp" ]]; then
    extras=dev
fi
stamp="$root/.venv/.openbai-$extras.stamp"
if [[ ! -f "$stamp" || "$root/pyproject.toml" -nt "$stamp" ]]; then
    if [[ "$extras" == runtime ]]; then
        "$root/.venv/bin/pip" install -q -e "$root"
    else
        "$root/.venv/bin/pip" install -q -e "$root[$extras]"
    fi
    touch "$stamp"
fi
# openbai's own bytecode, which an editable install leaves to the first import: where
# PYTHONDONTWRITEBYTECODE is set (as on these machines) nothing would ever write it, and every
# bai command, node runner and mount daemon would compile the modules it imports each time it
# starts (a node runner: ~45 ms of CPU more, ~1.4x). Up to date, this takes a few ms.
"$root/.venv/bin/python" -m compileall -q "$root/src/openbai" >/dev/null
