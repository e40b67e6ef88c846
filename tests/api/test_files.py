"""listOutputFiles with signed download links, and following a file as the job writes it."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from .conftest import TestClient
from .support import Arm, Server, job_body, wait_for_job

#: the server, the MODEL folder on disk, signed links by path
Served = tuple[Server, Path, dict[str, str]]


def job_url(arm: Arm, *segments: str, query: str = "") -> str:
    return arm.rg("workspaces", "ws", "experiments", "exp", "jobs", "j", *segments, query=query)


@pytest.fixture
def finished(client: TestClient, ws: Arm, logs_share: str) -> Arm:
    body = job_body(
        "echo out; echo err >&2; mkdir -p $AZ_BATCHAI_OUTPUT_MODEL/sub;"
        " printf abcdefghij > $AZ_BATCHAI_OUTPUT_MODEL/model.bin;"
        " for i in 1 2 3 4 5; do echo $i > $AZ_BATCHAI_OUTPUT_MODEL/f$i.txt; done",
        outputDirectories=[{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
    )
    assert client.put(job_url(ws), json=body).status_code == 200
    assert wait_for_job(client, job_url(ws))["properties"]["executionState"] == "succeeded"
    return ws


def list_files(client: Any, arm: Arm, query: str) -> Any:
    return client.post(job_url(arm, "listOutputFiles", query=query))


def test_stdouterr_files_have_signed_links(
    client: TestClient, anonymous: TestClient, finished: Arm
) -> None:
    response = list_files(client, finished, "outputdirectoryid=stdouterr")
    assert response.status_code == 200
    files = {f["name"]: f for f in response.json()["value"]}
    assert {"stdout.txt", "stderr.txt"} <= set(files)
    stdout = files["stdout.txt"]
    assert stdout["fileType"] == "file"
    assert stdout["properties"]["contentLength"] == 4
    assert stdout["properties"]["lastModified"].endswith("Z")
    fetched = anonymous.get(stdout["downloadUrl"])  # no token: the link is the proof
    assert fetched.status_code == 200 and fetched.content == b"out\n"
    assert anonymous.get(files["stderr.txt"]["downloadUrl"]).content == b"err\n"


def test_output_directory_paging_and_directories(
    client: TestClient, anonymous: TestClient, finished: Arm
) -> None:
    query = "outputdirectoryid=MODEL&maxresults=3"
    first = list_files(client, finished, query).json()
    entries = first["value"]
    assert entries[0] == {"name": "sub", "fileType": "directory"}  # no link, no properties
    link = first["nextLink"]
    assert "outputdirectoryid=MODEL" in link and "api-version=2018-05-01" in link
    while link:
        page = client.get(link).json()  # continuation pages are plain GETs
        entries += page["value"]
        link = page.get("nextLink")
    assert [e["name"] for e in entries] == [
        "sub",
        "f1.txt",
        "f2.txt",
        "f3.txt",
        "f4.txt",
        "f5.txt",
        "model.bin",
    ]
    model = entries[-1]["downloadUrl"]
    ranged = anonymous.get(model, headers={"Range": "bytes=2-5"})
    assert ranged.status_code == 206 and ranged.content == b"cdef"
    assert ranged.headers["Content-Range"] == "bytes 2-5/10"
    assert anonymous.get(model, headers={"Range": "bytes=7-"}).content == b"hij"
    assert anonymous.get(model, headers={"Range": "bytes=20-"}).status_code == 416
    reversed_range = anonymous.get(model, headers={"Range": "bytes=5-2"})  # invalid: ignored
    assert reversed_range.status_code == 200 and "Content-Range" not in reversed_range.headers
    assert reversed_range.content == b"abcdefghij"
    empty = list_files(client, finished, "outputdirectoryid=MODEL&directory=sub").json()
    assert empty == {"value": []}


def test_a_range_under_an_if_range_of_another_version_gets_the_whole_file(
    client: TestClient, anonymous: TestClient, finished: Arm
) -> None:
    listed = list_files(client, finished, "outputdirectoryid=MODEL").json()["value"]
    (model,) = [f["downloadUrl"] for f in listed if f["name"] == "model.bin"]
    modified = anonymous.get(model).headers["Last-Modified"]
    for other in ("Mon, 01 Jan 2001 00:00:00 GMT", '"an-entity-tag"', "not a date"):
        whole = anonymous.get(model, headers={"Range": "bytes=2-5", "If-Range": other})
        assert whole.status_code == 200 and whole.content == b"abcdefghij", other
        assert "Content-Range" not in whole.headers
    # a date validates once it is strong: the file unchanged for a second (RFC 9110 8.8.2.2)
    time.sleep(max(0.0, parsedate_to_datetime(modified).timestamp() + 2 - time.time()))
    part = anonymous.get(model, headers={"Range": "bytes=2-5", "If-Range": modified})
    assert part.status_code == 206 and part.content == b"cdef"


def test_a_range_of_an_empty_file_is_not_satisfiable(
    client: TestClient, anonymous: TestClient, ws: Arm, logs_share: str
) -> None:
    body = job_body(
        ': > "$AZ_BATCHAI_OUTPUT_MODEL/empty.txt"',
        outputDirectories=[{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
    )
    assert client.put(job_url(ws), json=body).status_code == 200
    assert wait_for_job(client, job_url(ws))["properties"]["executionState"] == "succeeded"
    (empty,) = list_files(client, ws, "outputdirectoryid=MODEL").json()["value"]
    whole = anonymous.get(empty["downloadUrl"])
    assert whole.status_code == 200 and whole.content == b""
    for given in ("bytes=0-0", "bytes=0-", "bytes=5-", "bytes=-5"):
        response = anonymous.get(empty["downloadUrl"], headers={"Range": given})
        assert response.status_code == 416, given
        assert response.headers["Content-Range"] == "bytes */0", given


def test_tampered_and_expired_links_are_refused(
    client: TestClient, anonymous: TestClient, finished: Arm
) -> None:
    files = list_files(client, finished, "outputdirectoryid=stdouterr&linkexpiryinminutes=5")
    url = {f["name"]: f for f in files.json()["value"]}["stdout.txt"]["downloadUrl"]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    expires = int(query["se"][0])
    assert 290 <= expires - time.time() <= 300
    other_file = url.replace("stdout.txt", "stderr.txt")
    later = url.replace(f"se={expires}", f"se={expires + 3600}")
    bad_sig = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    for tampered in (other_file, later, bad_sig):
        response = anonymous.get(tampered)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "AuthenticationFailed"
        assert b"out" not in response.content

    assert isinstance(client.app, Starlette)
    signer = client.app.state.signer
    from openbai.api.signing import SignedFile

    path = parts.path.removeprefix("/openbai/download/").split("/", 3)
    target = SignedFile(path[0], path[1], path[2], path[3])
    past = int(time.time()) - 1
    expired = f"{parts.path}?se={past}&sig={signer.signature(target, past)}"
    response = anonymous.get(expired)
    assert response.status_code == 403 and "expired" in response.json()["error"]["message"]


def test_list_output_files_parameters_are_checked(client: TestClient, finished: Arm) -> None:
    for query, target in [
        ("", "outputdirectoryid"),
        ("outputdirectoryid=stdouterr&linkexpiryinminutes=4", "linkexpiryinminutes"),
        ("outputdirectoryid=stdouterr&linkexpiryinminutes=601", "linkexpiryinminutes"),
        ("outputdirectoryid=stdouterr&maxresults=1001", "maxresults"),
        ("outputdirectoryid=stdouterr&directory=../..", "directory"),
    ]:
        response = list_files(client, finished, query)
        assert response.status_code == 400, query
        assert response.json()["error"]["target"] == target
    unknown = list_files(client, finished, "outputdirectoryid=NOPE")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "OutputDirectoryNotFound"
    missing_dir = list_files(client, finished, "outputdirectoryid=MODEL&directory=nope")
    assert missing_dir.status_code == 404


def test_stream_a_finished_job_file_and_resume(client: TestClient, finished: Arm) -> None:
    url = job_url(finished, "streamOutputFile", query="outputdirectoryid=stdouterr&file=stdout.txt")
    assert client.get(url).content == b"out\n"
    assert client.get(url + "&offset=2").content == b"t\n"
    assert client.get(url.replace("stdout.txt", "../x")).status_code == 400
    assert client.get(url.replace("stdouterr", "NOPE")).status_code == 404


def test_stream_follows_a_growing_file_until_the_job_ends(
    client: TestClient, ws: Arm, logs_share: str
) -> None:
    body = job_body("for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done")
    assert client.put(job_url(ws), json=body).status_code == 200
    url = job_url(ws, "streamOutputFile", query="outputdirectoryid=stdouterr&file=stdout.txt")
    arrivals = []
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            arrivals.append((time.monotonic(), chunk))
    assert b"".join(c for _, c in arrivals) == b"".join(f"line {i}\n".encode() for i in range(1, 6))
    assert len(arrivals) >= 3  # lines came as they were written, not all at the end
    job = client.get(job_url(ws)).json()
    assert job["properties"]["executionState"] == "succeeded"


# -- user content: what a download link answers with ------------------------------------------
@pytest.fixture
def user_content(client: TestClient, ws: Arm, logs_share: str) -> dict[str, str]:
    """Job ``j``: MODEL holds what ``web.user_content`` writes (an HTML report and an SVG
    with scripts, a PNG, a text file, names with a newline or not UTF-8); links by name."""
    from web.user_content import write_outputs

    body = job_body(
        write_outputs(),
        outputDirectories=[{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
    )
    assert client.put(job_url(ws), json=body).status_code == 200
    assert wait_for_job(client, job_url(ws))["properties"]["executionState"] == "succeeded"
    listed = list_files(client, ws, "outputdirectoryid=MODEL").json()["value"]
    return {f["name"]: f["downloadUrl"] for f in listed if f["fileType"] == "file"}


def test_download_links_never_let_a_browser_run_the_file(
    anonymous: TestClient, user_content: dict[str, str]
) -> None:
    from web.user_content import HTML, PNG, SVG, TEXT

    expected = {
        # name: (content, type, disposition)
        "report.html": (HTML.encode(), "text/html; charset=utf-8", "attachment"),
        "plot.svg": (SVG.encode(), "image/svg+xml", "attachment"),
        "pixel.png": (PNG, "image/png", "inline"),
        "notes.txt": (TEXT.encode(), "text/plain; charset=utf-8", "inline"),
    }
    for name, (content, media, disposition) in expected.items():
        response = anonymous.get(user_content[name])
        assert response.status_code == 200 and response.content == content, name
        assert response.headers["content-type"] == media, name
        assert response.headers["content-disposition"] == (
            f"{disposition}; filename=\"{name}\"; filename*=UTF-8''{name}"
        )
        assert response.headers["content-security-policy"] == "sandbox"
        assert response.headers["x-content-type-options"] == "nosniff"
        ranged = anonymous.get(user_content[name], headers={"Range": "bytes=0-3"})
        assert ranged.status_code == 206 and ranged.headers["content-security-policy"] == "sandbox"


def test_a_file_named_with_a_newline_is_served(
    client: TestClient, anonymous: TestClient, ws: Arm, user_content: dict[str, str]
) -> None:
    from web.user_content import NEWLINE_NAME

    response = anonymous.get(user_content[NEWLINE_NAME])
    assert response.status_code == 200 and response.content == b"two\nlines\n"
    assert "\n" not in response.headers["content-disposition"]
    query = "outputdirectoryid=MODEL&file=new%0Aline.txt"
    streamed = client.get(job_url(ws, "streamOutputFile", query=query))
    assert streamed.status_code == 200 and streamed.content == b"two\nlines\n"


def test_a_name_not_utf8_is_listed_without_a_link_and_hides_no_other_file(
    client: TestClient, anonymous: TestClient, ws: Arm, user_content: dict[str, str]
) -> None:
    from web.user_content import NEWLINE_NAME, UNDECODABLE_FILE, UNDECODABLE_FOLDER

    listed = list_files(client, ws, "outputdirectoryid=MODEL")
    assert listed.status_code == 200
    entries = {f["name"]: f for f in listed.json()["value"]}
    assert entries[UNDECODABLE_FOLDER] == {"name": UNDECODABLE_FOLDER, "fileType": "directory"}
    bad = entries[UNDECODABLE_FILE]
    assert bad["downloadUrl"] is None and bad["properties"]["contentLength"] == len("hidden\n")
    assert anonymous.get(user_content[NEWLINE_NAME]).content == b"two\nlines\n"
    assert anonymous.get(user_content["notes.txt"]).status_code == 200


def test_stream_of_a_missing_file_of_an_ended_job_is_404(client: TestClient, finished: Arm) -> None:
    url = job_url(finished, "streamOutputFile", query="outputdirectoryid=MODEL&file=nope.txt")
    response = client.get(url)
    assert response.status_code == 404 and response.json()["error"]["code"] == "ResourceNotFound"
    folder = client.get(url.replace("nope.txt", "sub"))
    assert folder.status_code == 400 and folder.json()["error"]["target"] == "file"


# -- a job racing the server's reads: a real `bai serve`, real threads ----------------------------
@pytest.fixture
def served(server: Server, logs_share: str) -> Iterator[Served]:
    """Through a real server: job ``j`` wrote MODEL/race/passwd ("inside") and MODEL/big.bin
    (24 MiB of "o"); yields (server, that MODEL folder on disk, signed links by path)."""
    model = '"$AZ_BATCHAI_OUTPUT_MODEL"'
    command = (
        f"mkdir {model}/race && echo inside > {model}/race/passwd"
        f" && head -c {BIG} /dev/zero | tr '\\0' o > {model}/big.bin"
    )
    arm = Arm(server.subscription)
    with server.client() as api:
        assert api.put(arm.rg("workspaces", "ws"), json={"location": "local"}).status_code == 200
        assert api.put(arm.rg("workspaces", "ws", "experiments", "exp")).status_code == 200
        cluster = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}}
        assert (
            api.put(arm.rg("workspaces", "ws", "clusters", "c1"), json=cluster).status_code == 200
        )
        body = job_body(
            command,
            outputDirectories=[{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
        )
        assert api.put(job_url(arm), json=body).status_code == 200
        assert wait_for_job(api, job_url(arm))["properties"]["executionState"] == "succeeded"
        links = {}
        for folder in ("", "race"):
            query = f"outputdirectoryid=MODEL&directory={folder or '.'}"
            for f in list_files(api, arm, query).json()["value"]:
                if f["fileType"] == "file":
                    links["/".join(p for p in (folder, f["name"]) if p)] = f["downloadUrl"]
    yield server, model_folder(server.home), links


BIG = 24 * 1024 * 1024


def model_folder(home: Path) -> Path:
    """The MODEL output folder in the embedded account's directory tree."""
    (found,) = [p.parent for p in (home / "storage").rglob("big.bin")]
    return found


def test_a_folder_swapped_for_a_symlink_to_etc_never_serves_etc(served: Served) -> None:
    server, model, links = served
    race = model / "race"
    parked, link = model / "race.real", model / "race.link"
    link.symlink_to("/etc")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(race, parked)
            os.rename(link, race)  # race -> /etc
            os.rename(race, link)
            os.rename(parked, race)

    swapper = threading.Thread(target=swap)
    swapper.start()
    statuses: Counter[int] = Counter()
    try:
        with httpx.Client(timeout=30) as http:
            for _ in range(2000):
                response = http.get(links["race/passwd"])
                assert b"root:" not in response.content
                assert response.status_code in (200, 403, 404), response.text
                if response.status_code == 200:
                    assert response.content == b"inside\n"
                statuses[response.status_code] += 1
    finally:
        stop.set()
        swapper.join()
    # the race really happened: the folder was found, and so was the link in its place
    assert statuses[200] > 0 and statuses[403] > 0, statuses


def test_a_file_replaced_or_deleted_mid_download_arrives_whole(served: Served) -> None:
    server, model, links = served
    path = model / "big.bin"
    with httpx.Client(timeout=30) as http:
        # replaced by rename after the first bytes arrived: the whole old version
        with http.stream("GET", links["big.bin"]) as response:
            assert response.status_code == 200
            chunks = response.iter_raw()
            got = [next(chunks)]
            new = model / "big.bin.new"
            new.write_bytes(b"n" * BIG)
            os.replace(new, path)
            got.extend(chunks)
        body = b"".join(got)
        assert len(body) == BIG and body.count(b"o") == BIG
        assert http.get(links["big.bin"]).content == b"n" * BIG  # the next download: the new one
        # deleted after the first bytes arrived: still all of it
        with http.stream("GET", links["big.bin"]) as response:
            chunks = response.iter_raw()
            got = [next(chunks)]
            path.unlink()
            got.extend(chunks)
        assert b"".join(got) == b"n" * BIG
        assert http.get(links["big.bin"]).status_code == 404


def test_head_answers_as_get_without_the_body(served: Served) -> None:
    server, _, links = served
    with httpx.Client(timeout=30) as http:
        got = http.get(links["big.bin"])
        head = http.head(links["big.bin"])
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Content-Length"] == str(BIG)
        for name in ("Content-Type", "Content-Disposition", "Last-Modified", "Accept-Ranges"):
            assert head.headers[name] == got.headers[name], name
        assert head.headers["Content-Security-Policy"] == "sandbox"
        part = http.head(links["big.bin"], headers={"Range": "bytes=2-5"})
        assert part.status_code == 206 and part.content == b""
        assert part.headers["Content-Range"] == f"bytes 2-5/{BIG}"
        assert part.headers["Content-Length"] == "4"
        assert http.head(f"{server.url}/healthz").status_code == 200
