#!/usr/bin/env bash
# Chromium for the web explorer's browser tests: Playwright (the Python package, pinned in
# pyproject's dev extra) drives Debian's Chromium; no browser is downloaded.
#
#   browser.sh install   apt-get install chromium (a no-op when it is there)
#   browser.sh path      print the executable the tests use (OPENBAI_CHROMIUM, default /usr/bin/chromium)
#   browser.sh check     start it headless through Playwright and load a page
#
# The tests (marked `browser`) launch it with executable_path and the flags in
# tests/web/browser.py; they are skipped when it is missing, unless $CI is set.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
chromium=${OPENBAI_CHROMIUM:-/usr/bin/chromium}

die() { echo "browser.sh: $*" >&2; exit 1; }

install() {
    if [[ -x "$chromium" ]]; then
        return 0
    fi
    echo "browser.sh: installing chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    [[ -x "$chromium" ]] || die "apt-get install chromium finished but $chromium is missing"
}

check() {
    [[ -x "$chromium" ]] || die "$chromium is missing (browser.sh install)"
    "$root/.venv/bin/python" - "$chromium" <<'EOF'
import sys
from playwright.sync_api import sync_playwright

args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=sys.argv[1], args=args)
    page = browser.new_page()
    page.set_content("<p id=ok>ok</p>")
    assert page.inner_text("#ok") == "ok"
    print(f"chromium {browser.version} works under Playwright")
    browser.close()
EOF
}

case "${1:-}" in
    install) install ;;
    path) echo "$chromium" ;;
    check) check ;;
    *) die "usage: browser.sh install|path|check" ;;
esac
