"""A file server's life with real nfs-ganesha: several callers finding it gone start one NFS
server, not one each; ``delete`` keeps its files (a server created again under the name
serves them, on the address configured then) unless the REST API is asked
``openbai-delete-data=true``; and one server that cannot start again (its port taken) is
listed as failed instead of failing the list of the whole workspace."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Bai
from starlette.exceptions import StarletteDeprecationWarning

from openbai.installation import App
from openbai.mounts.registry import fuse_available
from openbai.server import create_app
from openbai.services import deletions, tokens
from openbai.settings import Settings
from openbai.storage.nfs_server import NfsServer

from .conftest import FILE_SERVER, custom_job, nfs_job, write_job

with warnings.catch_warnings():  # starlette asks for httpx2; openbai pins httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

BAI = str(Path(sys.executable).with_name("bai"))
pytestmark = pytest.mark.usefixtures("nfs_ready")


def _server(bai: Bai, name: str) -> NfsServer:
    return NfsServer(bai.home / "file-servers" / "default" / "ws" / name)


def _ganeshas(server: NfsServer) -> list[int]:
    """The ganesha processes serving ``server``'s directory, whoever started them."""
    conf = str(server.directory / "ganesha.conf")
    return [p.pid for p in psutil.process_iter(["cmdline"]) if conf in (p.info["cmdline"] or [])]


def test_callers_finding_a_file_server_gone_at_once_start_one_nfs_server(workspace: Bai) -> None:
    bai = workspace
    bai("file-server", "create", "-w", "ws", "-n", "nfs", *FILE_SERVER)
    server = _server(bai, "nfs")
    assert len(_ganeshas(server)) == 1

    # the API's threads and the dispatcher, in one process
    server.stop()
    assert _ganeshas(server) == []
    states: list[Any] = []
    threads = [
        threading.Thread(target=lambda: states.append(NfsServer(server.directory).ensure_running()))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(states) == 6 and len({s.pid for s in states}) == 1
    assert _ganeshas(server) == [states[0].pid]

    # several bai commands at once, each in its own process
    server.stop()
    assert _ganeshas(server) == []
    env = {**os.environ, **bai.env}
    shows = [
        subprocess.Popen(
            [BAI, "file-server", "show", "-w", "ws", "-n", "nfs", "-o", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [show.communicate(timeout=120) for show in shows]
    assert [show.returncode for show in shows] == [0] * 4, outputs
    assert {json.loads(out)["mountSettings"]["mountPoint"] for out, _ in outputs} == {"/mnt/data"}
    (running,) = _ganeshas(server)
    recorded = server.state()
    assert server.is_running() and recorded is not None and recorded.pid == running

    # the one running is the one recorded, so delete stops it
    bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y")
    assert _ganeshas(server) == []
    assert not server.is_running()


def _run(bai: Bai, tmp_path: Path, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    job = write_job(tmp_path, properties, f"{name}.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", name, "-f", job)
    done = bai.wait(name, timeout=120)
    assert done["executionState"] == "succeeded", bai.why(done)
    return done


def _stdout(bai: Bai, job: str) -> str:
    where = ("-w", "ws", "-e", "exp", "-j", job)
    return str(bai("job", "file", "stream", *where, "-f", "stdout.txt").stdout)


@pytest.mark.skipif(not fuse_available(), reason="no FUSE")
@pytest.mark.timeout(600)
def test_delete_keeps_the_files_and_a_new_server_of_the_name_serves_them_where_configured(
    workspace: Bai, tmp_path: Path
) -> None:
    bai = workspace
    created = bai.json("file-server", "create", "-w", "ws", "-n", "nfs", *FILE_SERVER)
    assert created["mountSettings"]["fileServerInternalIP"] == "127.0.0.1"
    write = "echo kept > $AZ_BATCHAI_JOB_MOUNT_ROOT/nfs/model.txt"
    _run(bai, tmp_path, "writer", nfs_job(created["id"], write))

    bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y")
    data = _server(bai, "nfs").data
    assert (data / "shared" / "model.txt").read_text() == "kept\n"

    # the installation now serves its file servers on another address: the new server listens
    # there, not on the deleted one's address and ports
    bai.env["OPENBAI_FILE_SERVER_ADDRESS"] = "127.0.0.2"
    again = bai.json("file-server", "create", "-w", "ws", "-n", "nfs", *FILE_SERVER)
    assert again["mountSettings"]["fileServerInternalIP"] == "127.0.0.2"
    state = _server(bai, "nfs").state()
    assert state is not None and state.host == "127.0.0.2"
    read = "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/nfs/model.txt"
    _run(bai, tmp_path, "reader", nfs_job(again["id"], read))
    assert _stdout(bai, "reader") == "kept\n"


@pytest.mark.skipif(not fuse_available(), reason="no FUSE")
@pytest.mark.timeout(600)
def test_a_file_server_a_queued_or_running_job_mounts_is_not_deleted_from_under_it(
    workspace: Bai, tmp_path: Path, gates: Path
) -> None:
    bai = workspace
    created = bai.json("file-server", "create", "-w", "ws", "-n", "nfs", *FILE_SERVER)
    bai("cluster", "create", "-w", "ws", "-n", "withnfs", "--nodes", "1", "--nfs", "nfs")
    gate = gates / "gate"
    waits = f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done"
    # one job mounts it through its cluster's nodes, the other itself
    via_cluster = custom_job(waits, stdOutErrPathPrefix="$AZ_BATCHAI_MOUNT_ROOT/nfs")
    del via_cluster["mountVolumes"]
    on_cluster = write_job(tmp_path, via_cluster, "c.json")
    create = ("job", "create", "-w", "ws", "-e", "exp")
    bai(*create, "-c", "withnfs", "-n", "viacluster", "-f", on_cluster)
    refused = bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y", expect=4)
    assert "mounted by job viacluster of experiment exp" in refused.stderr
    assert "through cluster withnfs" in refused.stderr
    gate.touch()
    assert bai.wait("viacluster", timeout=120)["executionState"] == "succeeded"

    gate.unlink()
    direct = write_job(tmp_path, nfs_job(created["id"], waits), "d.json")
    bai(*create, "-c", "c1", "-n", "direct", "-f", direct)
    refused = bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y", expect=4)
    assert "mounted by job direct of experiment exp" in refused.stderr
    assert _ganeshas(_server(bai, "nfs")), "the refused delete stopped the server"
    gate.touch()
    assert bai.wait("direct", timeout=120)["executionState"] == "succeeded"
    assert _stdout(bai, "direct") == "started\n"
    # the cluster's jobs have ended: it may lose it (its next job fails, naming the server)
    bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y")
    bai("file-server", "show", "-w", "ws", "-n", "nfs", expect=3)


def test_an_unmanaged_mount_cannot_reach_a_file_server_past_its_workspace_check(
    workspace: Bai, tmp_path: Path
) -> None:
    """openbai mounts an unmanaged NFS volume itself, as root: naming a file server's address
    and ports there would skip the check a fileServers mount gets (a token limited to
    another workspace, say)."""
    bai = workspace
    bai.json("file-server", "create", "-w", "ws", "-n", "nfs", *FILE_SERVER)
    state = _server(bai, "nfs").state()
    assert state is not None
    ports = f"port={state.port},mountport={state.mount_port}"
    for source, options in [
        ("127.0.0.1:/mnt/data", ports),
        ("0.0.0.0:/mnt/data/shared", ports),  # connects to the loopback
        ("127.1:/mnt/data", ports),  # 127.0.0.1, as inet_aton reads it
        ("localhost:/mnt/data", "vers=3"),  # its ports left to rpcbind
        ("127.0.0.1:/", f"vers=4,port={state.port}"),
    ]:
        command = f"mount -t nfs {source} -o {options}"
        job = write_job(tmp_path, _unmanaged_job(command), "theirs.json")
        refused = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "theirs",
                      "-f", job, expect=2)  # fmt: skip
        assert "unmanagedFileSystems[0].mountCommand" in refused.stderr, command
        assert "is the address of file server default/ws/nfs" in refused.stderr, command


def test_an_unmanaged_mount_of_a_file_server_made_since_its_job_was_accepted_fails_it(
    workspace: Bai, tmp_path: Path, gates: Path
) -> None:
    """The check is made again when the job is planned: a file server created while the job
    waited may listen where its mount command points."""
    bai = workspace
    gate = gates / "gate"
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    logs = {"azureFileUrl": "https://acct.file.core.windows.net/logs", "relativeMountPath": "logs"}
    busy = custom_job(
        f"while [ ! -e {gate} ]; do sleep 0.05; done",
        nodeCount=2,  # both nodes of c1: the next job waits, queued
        mountVolumes={"azureFileShares": [logs]},
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "busy",
        "-f", write_job(tmp_path, busy, "busy.json"))  # fmt: skip
    port, mount_port = _free_port(), _free_port()
    command = f"mount -t nfs 127.0.0.1:/mnt/data -o port={port},mountport={mount_port}"
    props = _unmanaged_job(command)
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "theirs",
        "-f", write_job(tmp_path, props, "theirs.json"))  # fmt: skip
    # meanwhile a file server comes to listen there (as one created now could)
    server = bai.home / "file-servers" / "default" / "ws" / "later"
    server.mkdir(parents=True)
    state = {"host": "127.0.0.1", "port": port, "mount_port": mount_port}
    (server / "server.json").write_text(json.dumps(state))
    gate.touch()
    failed = bai.wait("theirs", timeout=120)
    assert failed["executionState"] == "failed"
    (error,) = failed["executionInfo"]["errors"]
    assert error["code"] == "AZFMountError", error
    assert "is the address of file server default/ws/later" in error["message"]


def _unmanaged_job(command: str) -> dict[str, Any]:
    """A job listing what ``command`` mounts at ``$AZ_BATCHAI_JOB_MOUNT_ROOT/theirs``."""
    return custom_job(
        "ls $AZ_BATCHAI_JOB_MOUNT_ROOT/theirs",
        stdOutErrPathPrefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/theirs",
        mountVolumes={
            "unmanagedFileSystems": [{"mountCommand": command, "relativeMountPath": "theirs"}]
        },
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_missing_file_server_is_said_to_be_missing(workspace: Bai) -> None:
    bai = workspace
    refused = bai("cluster", "create", "-w", "ws", "-n", "c2", "--nodes", "1", "--nfs", "nope",
                  expect=2)  # fmt: skip
    assert "The specified file server nope is not found in workspace ws" in refused.stderr
    assert "storage account" not in refused.stderr


@pytest.fixture
def rest(bai: Bai) -> Iterator[tuple[TestClient, str]]:
    """The REST API of ``bai``'s installation (in-process) and the URL of its workspace ``ws``."""
    app = App.open(Settings.load(bai.env))
    token = tokens.create_token(app, "tests")[1]
    sub = app.settings.subscription_id
    url = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws"
    api = create_app(app.settings, service=app)
    with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client, url
    app.close()


def test_the_rest_api_keeps_a_deleted_file_servers_data_unless_asked_to_delete_it(
    bai: Bai, rest: tuple[TestClient, str]
) -> None:
    client, ws = rest
    query = "api-version=2018-05-01"
    assert client.put(f"{ws}?{query}", json={"location": "local"}).status_code == 200
    body = {
        "properties": {
            "vmSize": "STANDARD_D14",
            "sshConfiguration": {"userAccountSettings": {"adminUserName": "me"}},
            "dataDisks": {"diskSizeInGB": 10, "diskCount": 1, "storageAccountType": "Standard_LRS"},
        }
    }
    for name in ("kept", "dropped"):
        created = client.put(f"{ws}/fileServers/{name}?{query}", json=body)
        assert created.status_code == 200, created.text
    servers = bai.home / "file-servers" / "rg" / "ws"
    data = {name: servers / name / "data" for name in ("kept", "dropped")}
    for name, path in data.items():
        (path / "result.txt").write_text(f"written on {name}")

    # as Batch AI's clients send it (the vendor SDK never sends openbai's parameter)
    assert client.delete(f"{ws}/fileServers/kept?{query}").status_code == 200
    assert (data["kept"] / "result.txt").read_text() == "written on kept"

    deleted = client.delete(f"{ws}/fileServers/dropped?{query}&openbai-delete-data=true")
    assert deleted.status_code == 200
    assert not data["dropped"].exists()
    assert not NfsServer(data["dropped"].parent).is_running()
    listed = client.get(f"{ws}/fileServers?{query}").json()["value"]
    assert listed == []


def _take(sockets: list[socket.socket], host: str, port: int) -> None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen()
    sockets.append(s)


def test_a_file_server_whose_port_was_taken_is_listed_as_failed_and_show_says_why(
    workspace: Bai, taken_port: list[socket.socket]
) -> None:
    bai = workspace
    for name in ("broken", "fine"):
        bai("file-server", "create", "-w", "ws", "-n", name, *FILE_SERVER)
    # the machine restarted, and another program took the NFS port of one before it started
    broken = _server(bai, "broken")
    state = broken.state()
    assert state is not None
    broken.stop()
    _take(taken_port, state.host, state.port)

    listed = bai("file-server", "list", "-w", "ws", "-o", "json")
    by_name = {f["name"]: f for f in json.loads(listed.stdout)}
    assert by_name["broken"]["provisioningState"] == "failed"
    assert by_name["broken"]["mountSettings"] is None
    assert by_name["fine"]["provisioningState"] == "succeeded"
    assert by_name["fine"]["mountSettings"]["mountPoint"] == "/mnt/data"
    assert (
        "WARNING: file server broken cannot be started"
        " ('bai file-server show -w ws -n broken' says why)"
    ) in listed.stderr
    table = bai("file-server", "list", "-w", "ws", "-o", "table").stdout.splitlines()
    assert [line.split()[0] for line in table[1:]] == ["broken", "fine"]
    assert _ganeshas(broken) == []  # ganesha was not started onto the taken port

    shown = bai("file-server", "show", "-w", "ws", "-n", "broken", expect=1)
    assert (
        f"file server broken cannot be started: the NFS port {state.host}:{state.port} is taken"
        f" by pid {os.getpid()}, "
    ) in shown.stderr
    assert "delete the file server and create it again" in shown.stderr

    # as the error advises: a server created again under the name takes free ports
    bai("file-server", "delete", "-w", "ws", "-n", "broken", "-y")
    again = bai.json("file-server", "create", "-w", "ws", "-n", "broken", *FILE_SERVER)
    assert again["provisioningState"] == "succeeded"
    renewed = broken.state()
    assert renewed is not None and renewed.port != state.port
    listed_again = bai.json("file-server", "list", "-w", "ws")
    assert [f["provisioningState"] for f in listed_again] == ["succeeded", "succeeded"]

    # a state computed on each read, never stored: once its port is free again, a server
    # listed as failed starts on its own ports and is listed as succeeded
    fine = _server(bai, "fine")
    fine_state = fine.state()
    assert fine_state is not None
    fine.stop()
    _take(taken_port, fine_state.host, fine_state.port)
    states = {
        f["name"]: f["provisioningState"] for f in bai.json("file-server", "list", "-w", "ws")
    }
    assert states == {"broken": "succeeded", "fine": "failed"}
    taken_port.pop().close()
    shown = bai.json("file-server", "show", "-w", "ws", "-n", "fine")
    assert shown["provisioningState"] == "succeeded"
    assert shown["mountSettings"]["fileServerInternalIP"] == fine_state.host
    restarted = fine.state()
    assert restarted is not None and restarted.pid != fine_state.pid
    assert (restarted.port, restarted.mount_port) == (fine_state.port, fine_state.mount_port)


@pytest.mark.skipif(not fuse_available(), reason="no FUSE")
@pytest.mark.timeout(600)
def test_a_workspace_whose_file_server_another_workspaces_job_mounts_is_not_deleted(
    workspace: Bai, tmp_path: Path, gates: Path
) -> None:
    """Deleting a workspace stops its file servers: one a queued or running job of another
    workspace mounts (by ARM id) is refused, as the file server's own delete is."""
    bai = workspace
    bai("workspace", "create", "-n", "wsc")
    created = bai.json("file-server", "create", "-w", "wsc", "-n", "nfs", *FILE_SERVER)
    server = NfsServer(bai.home / "file-servers" / "default" / "wsc" / "nfs")
    gate = gates / "gate"
    mount = "$AZ_BATCHAI_JOB_MOUNT_ROOT/nfs"
    waits = (
        f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done; echo after > {mount}/after.txt"
    )
    job = write_job(tmp_path, nfs_job(created["id"], waits), "theirs.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "theirs", "-f", job)
    refused = bai("workspace", "delete", "-n", "wsc", "-y", expect=4)
    assert "file server nfs of workspace wsc is mounted by job theirs" in refused.stderr
    assert "of workspace ws " in refused.stderr
    assert _ganeshas(server), "the refused delete stopped the server"
    assert bai.json("workspace", "show", "-n", "wsc")["provisioningState"] == "succeeded"
    gate.touch()  # the job goes on writing to the server
    done = bai.wait("theirs", timeout=120)
    assert done["executionState"] == "succeeded", bai.why(done)
    assert (server.data / "shared" / "after.txt").read_text() == "after\n"
    # its job has ended: the delete may begin, and then no new job mounts the server (the
    # delete's end stops it)
    app = App.open(Settings.load(bai.env))
    try:
        deletions.begin(app, "workspace", "default", "", "wsc")
    finally:
        app.close()
    late = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "late", "-f", job,
               expect=4)  # fmt: skip
    assert "workspace wsc of file server nfs is being deleted" in late.stderr
    bai("workspace", "delete", "-n", "wsc", "-y")
    bai("workspace", "show", "-n", "wsc", expect=3)
    assert _ganeshas(server) == []


def test_an_account_name_cannot_reach_another_workspaces_file_server(
    recipes: Bai, tmp_path: Path
) -> None:
    """``fileserver:RG/WS/NAME`` is the name openbai gives a file server's volume internally:
    as a job's ``accountName`` it would mount it past the workspace check of ``fileServers``
    and the FileServerInUse guard of its delete."""
    bai = recipes
    bai("workspace", "create", "-n", "wsb")
    bai.json("file-server", "create", "-w", "wsb", "-n", "fsb", *FILE_SERVER)
    theirs = {"containerName": "/mnt/data", "relativeMountPath": "theirs"}
    for collection, volume in [
        ("azureBlobFileSystems", {"accountName": "fileserver:default/wsb/fsb", **theirs}),
        ("azureBlobFileSystems", {"accountName": "mount:mount -t nfs 127.0.0.1:/", **theirs}),
        (
            "azureFileShares",
            {
                "accountName": "fileserver:default/wsb/fsb",
                "azureFileUrl": "https://acct.file.core.windows.net/mnt",
                "relativeMountPath": "theirs",
            },
        ),
    ]:
        properties = custom_job("true")
        properties["mountVolumes"] = {
            **properties["mountVolumes"],
            collection: [*properties["mountVolumes"][collection], volume],
        }
        job = write_job(tmp_path, properties, "theirs.json")
        refused = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "theirs",
                      "-f", job, expect=2)  # fmt: skip
        index = len(properties["mountVolumes"][collection]) - 1
        field = f"properties.mountVolumes.{collection}[{index}].accountName"
        assert field in refused.stderr, refused.stderr
        assert "storage account name" in refused.stderr
        bai("job", "show", "-w", "ws", "-e", "exp", "-n", "theirs", expect=3)
