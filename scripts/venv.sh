#!/usr/bin/env bash
# Create .venv (if needed) and install openbai into it with the given extras (default: dev).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=${1:-dev}
python=${PYTHON:-python3}
if [[ ! -x "$root/.venv/bin/python" ]]; then
    "$python" -m venv "$root/.venv"
    "$root/.venv/bin/pip" install -q --upgrade pip
fi
stamp="$root/.venv/.openbai-$extras.stamp"
if [[ ! -f "$stamp" || "$root/pyproject.toml" -nt "$stamp" ]]; then
    "$root/.venv/bin/pip" install -q -e "$root[$extras]"
    touch "$stamp"
fi
