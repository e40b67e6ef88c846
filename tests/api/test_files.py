"""listOutputFiles with signed download links, and following a file as the job writes it."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from .support import job_body, wait_for_job


def job_url(arm, *segments, query=""):
    return arm.rg("workspaces", "ws", "experiments", "exp", "jobs", "j", *segments, query=query)


@pytest.fixture
def finished(client, ws, logs_share):
    body = job_body(
        "echo out; echo err >&2; mkdir -p $AZ_BATCHAI_OUTPUT_MODEL/sub;"
        " printf abcdefghij > $AZ_BATCHAI_OUTPUT_MODEL/model.bin;"
        " for i in 1 2 3 4 5; do echo $i > $AZ_BATCHAI_OUTPUT_MODEL/f$i.txt; done",
        outputDirectories=[{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
    )
    assert client.put(job_url(ws), json=body).status_code == 200
    assert wait_for_job(client, job_url(ws))["properties"]["executionState"] == "succeeded"
    return ws


def list_files(client, arm, query):
    return client.post(job_url(arm, "listOutputFiles", query=query))


def test_stdouterr_files_have_signed_links(client, anonymous, finished):
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


def test_output_directory_paging_and_directories(client, anonymous, finished):
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
    empty = list_files(client, finished, "outputdirectoryid=MODEL&directory=sub").json()
    assert empty == {"value": []}


def test_tampered_and_expired_links_are_refused(client, anonymous, finished):
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

    signer = client.app.state.signer
    from openbai.api.signing import SignedFile

    path = parts.path.removeprefix("/openbai/download/").split("/", 3)
    target = SignedFile(path[0], path[1], path[2], path[3])
    past = int(time.time()) - 1
    expired = f"{parts.path}?se={past}&sig={signer.signature(target, past)}"
    response = anonymous.get(expired)
    assert response.status_code == 403 and "expired" in response.json()["error"]["message"]


def test_list_output_files_parameters_are_checked(client, finished):
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


def test_stream_a_finished_job_file_and_resume(client, finished):
    url = job_url(finished, "streamOutputFile", query="outputdirectoryid=stdouterr&file=stdout.txt")
    assert client.get(url).content == b"out\n"
    assert client.get(url + "&offset=2").content == b"t\n"
    assert client.get(url.replace("stdout.txt", "../x")).status_code == 400
    assert client.get(url.replace("stdouterr", "NOPE")).status_code == 404


def test_stream_follows_a_growing_file_until_the_job_ends(client, ws, logs_share):
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
