"""Markup in file names and log lines reaches the page as text (the browser test runs it)."""

from __future__ import annotations

import json
from collections.abc import Callable

from .conftest import JOB_URL, TestClient

J = JOB_URL + "/j"
NAME = "<script>pwned(1)<img src=x onerror=pwned(2)>.txt"
LINE = "<script>pwned(3)</script><img src=x onerror=pwned(4)>"


def test_file_names_and_log_lines_are_escaped(web: TestClient, run_job: Callable[..., str]) -> None:
    run_job("j", f"echo '{LINE}'; echo data > \"$AZ_BATCHAI_OUTPUT_MODEL/{NAME}\"")
    listing = web.get(J + "/files/MODEL").text
    escaped = "&lt;script&gt;pwned(1)&lt;img src=x onerror=pwned(2)&gt;.txt"
    assert f">{escaped}</a>" in listing and "<script>pwned" not in listing
    view = web.get(J + "/files/MODEL/view", params={"path": NAME})
    assert f'<h1 class="file-name">{escaped}</h1>' in view.text and "<script>pwned" not in view.text

    download = web.get(J + "/files/MODEL/download", params={"path": NAME})
    assert download.content == b"data\n"
    assert download.headers["content-disposition"].startswith(
        'attachment; filename="_script_pwned_1__img src_x onerror_pwned_2__.txt"; '
    )

    stream = web.get(J + "/files/stdouterr/stream", params={"path": "stdout.txt"}).text
    assert f"data: {json.dumps(LINE + chr(10), ensure_ascii=False)}" in stream
