"""Outputs a hostile job writes: an HTML report and an SVG whose scripts, were they run on
openbai's origin, would announce it (a request to ``/script-ran``, a changed title); a
picture, a text file, a file whose name holds a newline, and a file and a folder whose names
are not UTF-8 (byte 0xff, 0xfe)."""

from __future__ import annotations

import base64

BEACON = "/script-ran"
HTML = (
    "<!doctype html><html><head><title>report</title></head><body><h1>report</h1>"
    f"<script>document.title = 'PWNED'; fetch('{BEACON}?html')</script>"
    f'<img src="missing.png" onerror="fetch(\'{BEACON}?onerror\')"></body></html>\n'
)
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"'
    f" onload=\"fetch('{BEACON}?svg-onload')\">"
    f"<script>document.title = 'PWNED'; fetch('{BEACON}?svg')</script>"
    '<rect width="40" height="40" fill="teal"/></svg>\n'
)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TEXT = "<b>just text</b>\n"
NEWLINE_NAME = "new\nline.txt"
#: the names not UTF-8 as they are shown, each such byte as U+FFFD: a file and a folder
UNDECODABLE_FILE = "bad\ufffd.txt"
UNDECODABLE_FOLDER = "dir\ufffd"


def write_outputs() -> str:
    """The job command that writes the files into MODEL (from its own command line: a job
    need not see the test's folders)."""
    files = {
        "report.html": HTML.encode(),
        "plot.svg": SVG.encode(),
        "pixel.png": PNG,
        "notes.txt": TEXT.encode(),
    }
    out = '"$AZ_BATCHAI_OUTPUT_MODEL"'
    steps = [
        f"echo {base64.b64encode(data).decode()} | base64 -d > {out}/{name}"
        for name, data in files.items()
    ]
    steps.append(f"printf 'two\\nlines\\n' > {out}/\"$(printf 'new\\nline.txt')\"")
    steps.append(f"echo hidden > {out}/\"bad$(printf '\\377').txt\"")
    steps.append(f"mkdir {out}/\"dir$(printf '\\376')\"")
    return " && ".join(steps)
