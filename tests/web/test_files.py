"""The explorer: folders, sizes and times, file views, downloads — and nothing outside the
job's output directories, however the path is written."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from openbai.installation import App

from .conftest import JOB_URL, TestClient

J = JOB_URL + "/j"


@pytest.fixture
def outputs(web: TestClient, run_job: Callable[..., str]) -> TestClient:
    """Job ``j``: MODEL holds sub/deep/c.txt, model.bin, and symlinks leading out of the
    volume (to /etc and /etc/passwd) and one staying inside the output folder."""
    command = (
        'cd "$AZ_BATCHAI_OUTPUT_MODEL" && mkdir -p sub/deep && printf abcdefghij > model.bin'
        " && echo deep > sub/deep/c.txt && ln -s /etc etc && ln -s /etc/passwd passwd"
        " && ln -s model.bin alias.bin; echo hello"
    )
    assert run_job("j", command) == "succeeded"
    return web


def entries(html: str) -> list[str]:
    return re.findall(r'<tr class="(?:file|folder)">\s*<td><a [^>]*>([^<]+)</a>', html)


def test_an_output_directory_lists_folders_first_with_sizes_and_times(outputs: TestClient) -> None:
    page = outputs.get(J + "/files/MODEL")
    assert page.status_code == 200
    assert entries(page.text) == ["sub/", "model.bin"]  # no symlinks: see below
    row = page.text[page.text.index(">model.bin</a>") :].split("</tr>")[0]
    assert '<td class="num" title="10 bytes">10 B</td>' in row
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ</td>", row)
    assert f'href="{J}/files/MODEL/download?path=model.bin"' in row


def test_folders_open_inside_the_page_or_as_a_page(outputs: TestClient) -> None:
    fragment = outputs.get(
        J + "/files/MODEL?path=sub%2Fdeep&embedded=1", headers={"HX-Request": "true"}
    )
    assert "<html" not in fragment.text
    assert entries(fragment.text) == ["c.txt"]
    # the breadcrumb back up: inside the job's page, whose URL names the open folder
    assert f'hx-get="{J}/files/MODEL?path=sub&amp;embedded=1"' in fragment.text
    assert f'hx-push-url="{J}?dir=MODEL&amp;path=sub"' in fragment.text
    assert f'href="{J}?dir=MODEL&amp;path=sub"' in fragment.text
    page = outputs.get(J + "/files/MODEL?path=sub/deep")
    assert "<html" in page.text and entries(page.text) == ["c.txt"]
    assert f'<a href="{J}/files/MODEL?path=sub">sub</a>' in page.text  # on its own: a link
    assert "hx-push-url" not in page.text

    job = outputs.get(J + "?dir=MODEL&path=sub%2Fdeep")  # a bookmark of the job's page
    assert f'id="explorer" hx-get="{J}/files/MODEL?path=sub%2Fdeep&amp;embedded=1"' in job.text
    assert outputs.get(J + "?dir=" + "x" * 65).status_code == 400


def test_stdouterr_is_an_output_directory_too(outputs: TestClient) -> None:
    assert {"execution.log", "stderr.txt", "stdout.txt"} <= set(
        entries(outputs.get(J + "/files/stdouterr").text)
    )


def test_a_download_is_the_files_bytes_as_an_attachment(outputs: TestClient) -> None:
    response = outputs.get(J + "/files/MODEL/download?path=model.bin")
    assert response.status_code == 200 and response.content == b"abcdefghij"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == "10"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"model.bin\"; filename*=UTF-8''model.bin"
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers.get_list("content-security-policy")
    nested = outputs.get(J + "/files/MODEL/download?path=sub/deep/c.txt")
    assert nested.content == b"deep\n"


def test_a_file_view_follows_the_file_and_offers_the_download(outputs: TestClient) -> None:
    page = outputs.get(J + "/files/stdouterr/view?path=stdout.txt")
    assert page.status_code == 200
    # the view comes through the browser's shared stream (/ui/live), opened at its end
    assert 'data-live="/ui/live"' in page.text
    assert 'data-directory="stdouterr" data-path="stdout.txt"' in page.text
    assert f'data-earlier="{J}/files/stdouterr/earlier?path=stdout.txt"' in page.text
    assert f'href="{J}/files/stdouterr/download?path=stdout.txt" download' in page.text
    folder = outputs.get(J + "/files/MODEL/view?path=sub", follow_redirects=False)
    assert folder.status_code == 303 and folder.headers["location"] == J + "/files/MODEL?path=sub"


def test_a_symlink_inside_the_folder_is_not_followed_either(outputs: TestClient) -> None:
    """A link is never followed, not even one staying inside: the job could swap it for one
    leading out between a check and an open."""
    response = outputs.get(J + "/files/MODEL/download?path=alias.bin")
    assert response.status_code == 403 and b"abcdefghij" not in response.content
    assert "alias.bin" not in outputs.get(J + "/files/MODEL").text


ESCAPES = [
    "..",
    "../..",
    "../stdouterr/stdout.txt",
    "sub/../../x",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "sub%2f%2e%2e%2f%2e%2e%2fstdouterr%2fstdout.txt",
    ".%2e/.%2e/.%2e/etc/passwd",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "..%5c..%5cetc%5cpasswd",
    "sub%00/../../x",
]
ACTIONS = ["", "/view", "/download", "/stream"]


def test_no_path_leads_out_of_the_output_directory(outputs: TestClient) -> None:
    """One job, every way of writing a path out (the checks need no new job each)."""
    for path in ESCAPES:
        for action in ACTIONS:
            response = outputs.get(f"{J}/files/MODEL{action}?path={path}", follow_redirects=False)
            assert response.status_code == 400, (action, path, response.status_code)
            assert "root:" not in response.text and "hello" not in response.text


def test_symlinks_out_of_the_volume_are_refused(outputs: TestClient) -> None:
    for path in ("passwd", "etc/passwd", "etc", "etc/hostname", "alias.bin"):
        for action in ACTIONS:
            response = outputs.get(f"{J}/files/MODEL{action}?path={path}", follow_redirects=False)
            assert response.status_code == 403, (action, path, response.status_code)
            assert "root:" not in response.text


def test_symlinks_out_of_the_volume_are_not_listed(outputs: TestClient) -> None:
    listed = outputs.get(J + "/files/MODEL").text
    assert "passwd" not in listed and ">etc/<" not in listed


def test_only_the_jobs_output_directories_can_be_opened(outputs: TestClient) -> None:
    # a literal ".." segment is resolved by every client before it is sent: encode it
    for directory in ("%2e%2e", ".%2e", "%2e%2e%2f%2e%2e", "NOPE", "stdouterr%2f%2e%2e"):
        for action in ACTIONS:
            response = outputs.get(f"{J}/files/{directory}{action}?path=stdout.txt")
            assert response.status_code == 404, (directory, action, response.status_code)
            assert "hello" not in response.text


def test_a_running_jobs_folder_asks_again_at_an_address_that_answers(
    web: TestClient, run_job: Callable[..., str], installation: App
) -> None:
    """The explorer of a running job fetches its folder again (htmx polling); that address
    must be a valid one for the top folder too, where there is no ``path``."""
    from .conftest import wait_for

    run_job("live", 'mkdir "$AZ_BATCHAI_OUTPUT_MODEL/sub" && sleep 60', wait=False)
    wait_for(installation, "live", ("running",))
    for path in ("", "sub"):
        query = f"?path={path}" if path else ""
        deadline = time.monotonic() + 30
        while (
            fragment := web.get(
                JOB_URL + f"/live/files/MODEL{query}", headers={"HX-Request": "true"}
            )
        ).status_code != 200:
            assert time.monotonic() < deadline, fragment.text  # sub is made as the job starts
            time.sleep(0.1)
        (again,) = re.findall(r'class="refresh" hidden hx-get="([^"]+)"', fragment.text)
        again = again.replace("&amp;", "&")
        assert web.get(again, headers={"HX-Request": "true"}).status_code == 200, again
    finished = web.get(J + "/files/MODEL", headers={"HX-Request": "true"})
    assert 'class="refresh"' not in finished.text  # an ended job's folder stays as it is


@pytest.fixture
def user_content(web: TestClient, run_job: Callable[..., str]) -> TestClient:
    """Job ``u``: MODEL holds an HTML report and an SVG with scripts, a PNG, a text file and
    a file whose name holds a newline."""
    from .user_content import write_outputs

    assert run_job("u", write_outputs()) == "succeeded"
    return web


U = JOB_URL + "/u"


def test_downloads_of_html_and_svg_are_sandboxed_attachments(user_content: TestClient) -> None:
    for name in ("report.html", "plot.svg", "pixel.png", "notes.txt"):
        response = user_content.get(f"{U}/files/MODEL/download?path={name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in response.headers.get_list("content-security-policy")
        assert response.headers["x-content-type-options"] == "nosniff"


def test_pictures_are_shown_as_images_and_nothing_else_is(user_content: TestClient) -> None:
    from .user_content import PNG, SVG

    view = user_content.get(f"{U}/files/MODEL/view?path=pixel.png").text
    assert f'<img src="{U}/files/MODEL/picture?path=pixel.png"' in view
    assert f'<img src="{U}/files/MODEL/picture?path=plot.svg"' in (
        user_content.get(f"{U}/files/MODEL/view?path=plot.svg").text
    )
    assert "<img" not in user_content.get(f"{U}/files/MODEL/view?path=report.html").text
    for name, media, body in (
        ("pixel.png", "image/png", PNG),
        ("plot.svg", "image/svg+xml", SVG.encode()),
    ):
        picture = user_content.get(f"{U}/files/MODEL/picture?path={name}")
        assert picture.status_code == 200 and picture.content == body
        assert picture.headers["content-type"] == media
        assert picture.headers["content-disposition"].startswith("inline;")
        # opened on its own, an SVG is a document: the sandbox keeps its script from running
        assert "sandbox" in picture.headers.get_list("content-security-policy")
        assert picture.headers["x-content-type-options"] == "nosniff"
    for name in ("report.html", "notes.txt"):
        response = user_content.get(f"{U}/files/MODEL/picture?path={name}")
        assert response.status_code == 404 and "PWNED" not in response.text


def test_a_file_named_with_a_newline_is_listed_viewed_and_downloaded(
    user_content: TestClient,
) -> None:
    from urllib.parse import quote

    from .user_content import NEWLINE_NAME

    listed = user_content.get(f"{U}/files/MODEL").text
    path = quote(NEWLINE_NAME, safe="")
    assert f'href="{U}/files/MODEL/download?path={path}"' in listed
    response = user_content.get(f"{U}/files/MODEL/download?path={path}")
    assert response.status_code == 200 and response.content == b"two\nlines\n"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"new_line.txt\"; filename*=UTF-8''new%0Aline.txt"
    )
    assert user_content.get(f"{U}/files/MODEL/view?path={path}").status_code == 200


def test_a_name_not_utf8_is_shown_without_links_and_hides_no_other_file(
    user_content: TestClient,
) -> None:
    from .user_content import UNDECODABLE_FILE, UNDECODABLE_FOLDER

    for headers in ({}, {"HX-Request": "true"}):  # the page, and the fragment the job page loads
        listed = user_content.get(f"{U}/files/MODEL?embedded=1", headers=headers)
        assert listed.status_code == 200
        assert f"<td>{UNDECODABLE_FILE}</td>" in listed.text  # shown, linked to nothing
        assert f"<td>{UNDECODABLE_FOLDER}/</td>" in listed.text
        assert listed.text.count("download</a>") == 5  # the other files' downloads
        assert f'href="{U}/files/MODEL/download?path=notes.txt"' in listed.text


def test_a_binary_file_is_offered_for_download_not_streamed_as_text(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    command = (
        'cd "$AZ_BATCHAI_OUTPUT_MODEL" && printf "ab\\0cd" > weights.bin'
        " && printf 'plain text' > notes.bin"
    )
    assert run_job("j", command) == "succeeded"
    page = web.get(J + "/files/MODEL/view?path=weights.bin")
    assert page.status_code == 200
    assert "This is a binary file" in page.text
    assert "data-log-view" not in page.text
    assert f'href="{J}/files/MODEL/download?path=weights.bin" download' in page.text
    assert web.get(J + "/files/MODEL/download?path=weights.bin").content == b"ab\0cd"

    text = web.get(J + "/files/MODEL/view?path=notes.bin")  # the name does not decide
    assert "This is a binary file" not in text.text
    assert 'data-directory="MODEL" data-path="notes.bin"' in text.text
