"""File servers and unmanaged file systems, end to end: `bai file-server create` starts a real
nfs-ganesha, jobs mount it (fileServers) through openbai's FUSE filesystem on libnfs, write
stdout and outputs there, and another job reads what the first wrote; `unmanagedFileSystems`
with `mount -t nfs` reaches the same export, and `mount -t cifs` a share of the test Samba (through openbai's SMB
filesystem); a type openbai cannot mount fails the job."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import uuid
from hashlib import sha256
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Bai
from nfs_fixture import Nfs, nfs_server
from polling import wait_until
from samba_fixture import Samba

from openbai.mounts.registry import fuse_available
from openbai.storage.base import VolumeKind
from openbai.storage.daemons import stop as stop_daemon
from openbai.storage.nfs import NfsStorage
from openbai.storage.nfs_server import NfsServer
from openbai.storage.samba_shares import SambaShares

from .conftest import nfs_job, write_job

__all__ = ["nfs_server"]  # a fixture

pytestmark = pytest.mark.skipif(not fuse_available(), reason="no FUSE")


@pytest.fixture
def file_server(workspace: Bai, nfs_ready: None) -> Any:
    bai = workspace
    shown = bai.json(
        "file-server",
        "create",
        "-w",
        "ws",
        "-n",
        "nfs",
        "--disk-count",
        "2",
        "--disk-size",
        "10",
        "-s",
        "STANDARD_D14",
        "--storage-sku",
        "Standard_LRS",
    )
    yield shown
    # (a test may have deleted it already)
    bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y", expect=None)
    server = NfsServer(bai.home / "file-servers" / "default" / "ws" / "nfs")
    assert not server.is_running()
    shutil.rmtree(server.directory, ignore_errors=True)


def _run(bai: Bai, tmp_path: Path, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    job = write_job(tmp_path, properties, f"{name}.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", name, "-f", job)
    return bai.wait(name, timeout=120)


def _job_without_volumes(prefix: str, command: str) -> dict[str, Any]:
    """A job that mounts no volume of its own: its stdout goes to ``prefix``, on a volume its
    cluster or the flags of ``job create`` mount."""
    return {
        "nodeCount": 1,
        "stdOutErrPathPrefix": prefix,
        "customToolkitSettings": {"commandLine": command},
    }


def test_file_server_is_a_real_nfs_server_jobs_share(
    workspace: Bai, file_server: dict[str, Any], tmp_path: Path
) -> None:
    bai = workspace
    settings = file_server["mountSettings"]
    assert settings["mountPoint"] == "/mnt/data"
    assert settings["fileServerInternalIP"] == "127.0.0.1"
    listed = bai.json("file-server", "list", "-w", "ws")
    assert [f["mountSettings"] for f in listed] == [settings]

    writer = _run(
        bai,
        tmp_path,
        "writer",
        nfs_job(
            file_server["id"],
            "echo hello from nfs; head -c 3000000 /dev/urandom > $AZ_BATCHAI_OUTPUT_MODEL/w.bin;"
            " sha256sum $AZ_BATCHAI_OUTPUT_MODEL/w.bin | cut -d' ' -f1 > $AZ_BATCHAI_JOB_MOUNT_ROOT/nfs/sum",
            outputDirectories=[{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/nfs"}],
        ),
    )
    assert writer["executionState"] == "succeeded", writer
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "writer", "-f", "stdout.txt")
    assert out.stdout == "hello from nfs\n"
    files = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "writer", "-d", "MODEL")
    assert [(f["name"], f["contentLength"]) for f in files] == [("w.bin", 3000000)]

    reader = _run(
        bai,
        tmp_path,
        "reader",
        nfs_job(
            file_server["id"],
            'cd $AZ_BATCHAI_JOB_MOUNT_ROOT/nfs && test "$(sha256sum */*/workspaces/ws/experiments/exp/jobs/writer/*/outputs/w.bin | cut -d\' \' -f1)" = "$(cat sum)" && echo same',
        ),
    )
    assert reader["executionState"] == "succeeded", reader
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "reader", "-f", "stdout.txt")
    assert out.stdout == "same\n"
    data = bai.home / "file-servers" / "default" / "ws" / "nfs" / "data" / "shared"
    assert (data / "sum").is_file()


def test_file_server_is_started_again_after_it_went_away(
    workspace: Bai, file_server: dict[str, Any], tmp_path: Path
) -> None:
    bai = workspace
    server = NfsServer(bai.home / "file-servers" / "default" / "ws" / "nfs")
    server.stop()
    assert not server.is_running()
    job = _run(bai, tmp_path, "after", nfs_job(file_server["id"], "echo still here"))
    assert job["executionState"] == "succeeded", job.get("executionInfo")
    assert server.is_running()


def test_unmanaged_nfs_mount_command_reaches_the_export(
    workspace: Bai, nfs_server: Nfs, tmp_path: Path
) -> None:
    """Your own NFS server (not one of the installation's file servers: those are mounted
    through fileServers), named by address and ports in a mount command."""
    bai = workspace
    command = (
        f"mount -t nfs -o vers=3,port={nfs_server.port},mountport={nfs_server.mount_port}"
        f" {nfs_server.host}:{nfs_server.export}"
    )
    job = _run(
        bai,
        tmp_path,
        "unmanaged",
        {
            "nodeCount": 1,
            "customToolkitSettings": {
                "commandLine": "echo via mount command; ls $AZ_BATCHAI_JOB_MOUNT_ROOT/own"
            },
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/own",
            "mountVolumes": {
                "unmanagedFileSystems": [{"mountCommand": command, "relativeMountPath": "own"}]
            },
        },
    )
    assert job["executionState"] == "succeeded", job.get("executionInfo")
    out = bai(
        "job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "unmanaged", "-f", "stdout.txt"
    )
    assert out.stdout.startswith("via mount command\n")
    segment = job["jobOutputDirectoryPathSegment"]
    assert (nfs_server.data / segment / "stdouterr" / "stdout.txt").is_file()


def test_a_file_server_mounted_ro_is_read_and_left_as_it_was(
    workspace: Bai, file_server: dict[str, Any], nfs_server: Nfs, tmp_path: Path
) -> None:
    """mountOptions ro, on fileServers and in an unmanaged mount command's -o (of your own
    NFS server): the FUSE mount is read-only in the kernel, whose refusal the job sees
    (EROFS)."""
    bai = workspace
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    data = bai.home / "file-servers" / "default" / "ws" / "nfs" / "data"
    (data / "in.txt").write_text("dataset\n")
    own = f"in-{uuid.uuid4().hex}.txt"  # the session's server serves other tests too
    # through NFS: ganesha does not see what is written beside it into a folder it has cached
    (tmp_path / own).write_text("dataset\n")
    client = NfsStorage.from_options("own", VolumeKind.FILE, nfs_server.options())
    try:
        client.upload(nfs_server.export, own, tmp_path / own)
    finally:
        client.close()
    command = (
        f"mount -t nfs -o ro,vers=3,port={nfs_server.port},mountport={nfs_server.mount_port}"
        f" {nfs_server.host}:{nfs_server.export}"
    )
    tries = " ".join(
        f"cat $AZ_BATCHAI_JOB_MOUNT_ROOT/{m}/{name};"
        f" (echo x > $AZ_BATCHAI_JOB_MOUNT_ROOT/{m}/new-{name}) 2>&1 | grep -o 'Read-only file system';"
        f" (rm $AZ_BATCHAI_JOB_MOUNT_ROOT/{m}/{name}) 2>&1 | grep -o 'Read-only file system';"
        for m, name in (("nfs", "in.txt"), ("un", own))
    )
    job = _run(
        bai,
        tmp_path,
        "ro",
        {
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": tries},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "mountVolumes": {
                "azureFileShares": [
                    {
                        "azureFileUrl": "https://acct.file.core.windows.net/logs",
                        "relativeMountPath": "logs",
                    }
                ],
                "fileServers": [
                    {
                        "fileServer": {"id": file_server["id"]},
                        "relativeMountPath": "nfs",
                        "mountOptions": "ro,hard",
                    }
                ],
                "unmanagedFileSystems": [{"mountCommand": command, "relativeMountPath": "un"}],
            },
        },
    )
    assert job["executionState"] == "succeeded", job.get("executionInfo")
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "ro", "-f", "stdout.txt")
    assert out.stdout == "dataset\nRead-only file system\nRead-only file system\n" * 2
    assert sorted(p.name for p in data.iterdir()) == ["in.txt"]
    assert (nfs_server.data / own).read_text() == "dataset\n"
    assert not (nfs_server.data / f"new-{own}").exists()
    log = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "ro", "-f", "execution.log")
    assert "nfs is read-only (mountOptions 'ro,hard')" in log.stdout
    assert "un is read-only (mountOptions 'ro')" in log.stdout
    assert "not applied by openbai's own clients: hard" in log.stdout


def test_a_type_openbai_cannot_mount_fails_the_job_naming_the_command(
    recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    command = "mount -t sshfs user@10.0.0.4:/data"
    job = _run(
        bai,
        tmp_path,
        "gluster",
        {
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": "echo never"},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "mountVolumes": {
                "azureFileShares": [
                    {
                        "azureFileUrl": "https://acct.file.core.windows.net/logs",
                        "relativeMountPath": "logs",
                    }
                ],
                "unmanagedFileSystems": [{"mountCommand": command, "relativeMountPath": "g"}],
            },
        },
    )
    assert job["executionState"] == "failed"
    errors = job["executionInfo"]["errors"]
    assert errors[0]["code"] == "AZFMountError"
    assert command in errors[0]["message"]


def test_a_command_that_is_no_mount_command_is_refused_when_the_job_is_created(
    recipes: Bai, tmp_path: Path
) -> None:
    """What a node would refuse whatever it has (not a mount, a source of the wrong form) is
    refused at once, naming the field, not by every job that starts on the cluster."""
    bai = recipes
    field = "unmanagedFileSystems[0].mountCommand"
    for command, said in [
        ("rm -rf /", "openbai runs only 'mount -t TYPE SOURCE' commands"),
        ("mount -t nfs 10.0.0.4", "an NFS source is HOST:/export"),
        ("mount -t cifs 10.0.0.4/share", "a cifs source is //HOST/SHARE"),
    ]:
        mounts = {"unmanagedFileSystems": [{"mountCommand": command, "relativeMountPath": "u"}]}
        job = write_job(tmp_path, {**_job_without_volumes("$AZ_BATCHAI_JOB_MOUNT_ROOT/u", "true"),
                                   "mountVolumes": mounts}, "bad.json")  # fmt: skip
        refused = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "bad",
                      "-f", job, expect=2)  # fmt: skip
        assert f"properties.mountVolumes.{field}" in refused.stderr and said in refused.stderr
        cluster = tmp_path / "cluster.json"
        cluster.write_text(json.dumps({"properties": {"nodeSetup": {"mountVolumes": mounts}}}))
        refused = bai("cluster", "create", "-w", "ws", "-n", "bad", "-f", str(cluster), expect=2)
        assert f"properties.nodeSetup.mountVolumes.{field}" in refused.stderr
    assert bai.json("job", "list", "-w", "ws", "-e", "exp") == []
    assert "bad" not in [c["name"] for c in bai.json("cluster", "list", "-w", "ws")]


def test_the_nfs_flags_mount_a_file_server_on_a_cluster_and_a_job(
    workspace: Bai, file_server: dict[str, Any], tmp_path: Path
) -> None:
    bai = workspace
    # az batchai cluster create --nfs NAME: every node of the cluster mounts it
    bai("cluster", "create", "-w", "ws", "-n", "withnfs", "--nodes", "1", "--nfs", "nfs",
        "--nfs-mount-path", "data")  # fmt: skip
    mounts = bai.json("cluster", "show", "-w", "ws", "-n", "withnfs")["nodeSetup"]["mountVolumes"]
    assert mounts["fileServers"] == [
        {"fileServer": {"id": file_server["id"]}, "relativeMountPath": "data"}
    ]
    writer = write_job(
        tmp_path,
        _job_without_volumes(
            "$AZ_BATCHAI_MOUNT_ROOT/data",
            "echo from-the-cluster > $AZ_BATCHAI_MOUNT_ROOT/data/hello.txt",
        ),
        "writer.json",
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "withnfs", "-n", "writer", "-f", writer)
    assert bai.wait("writer", timeout=120)["executionState"] == "succeeded"
    # az batchai job create --nfs NAME: the job alone mounts it, at its own mount root
    reader = write_job(
        tmp_path,
        _job_without_volumes(
            "$AZ_BATCHAI_JOB_MOUNT_ROOT/srv", "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/srv/hello.txt"
        ),
        "reader.json",
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "reader", "-f", reader,
        "--nfs", file_server["id"], "--nfs-mount-path", "srv")  # fmt: skip
    assert bai.wait("reader", timeout=120)["executionState"] == "succeeded"
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "reader", "-f", "stdout.txt")
    assert out.stdout == "from-the-cluster\n"


@pytest.fixture
def samba_share(samba: Samba) -> Any:
    """A share of its own on the test Samba, with a file a job reads."""
    name = f"cifs{uuid.uuid4().hex[:10]}"
    shares = SambaShares(samba.config)
    shares.create_share(name)
    (samba.share_root / name / "input.txt").write_text("from the share\n")
    yield name
    shares.delete_share(name)


def test_unmanaged_cifs_mount_command_reads_and_writes_the_samba_share(
    workspace: Bai, samba: Samba, samba_share: str, tmp_path: Path
) -> None:
    bai = workspace
    command = (
        f"mount -t cifs //{samba.host}/{samba_share}"
        f" -o vers=3.0,username={samba.user},password={samba.password},port={samba.port}"
        ",dir_mode=0777,file_mode=0777"
    )
    job = _run(
        bai,
        tmp_path,
        "cifs",
        {
            "nodeCount": 1,
            "customToolkitSettings": {
                "commandLine": "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/smb/input.txt;"
                " mkdir -p $AZ_BATCHAI_JOB_MOUNT_ROOT/smb/out;"
                " echo written by the job > $AZ_BATCHAI_JOB_MOUNT_ROOT/smb/out/result.txt;"
                # 1 MiB writes: written behind, several in flight
                " dd if=/dev/urandom of=$AZ_BATCHAI_JOB_MOUNT_ROOT/smb/out/big.bin bs=1M count=6"
                " status=none; cd $AZ_BATCHAI_JOB_MOUNT_ROOT/smb/out;"
                " sha256sum big.bin > big.sha256"
            },
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/smb",
            "mountVolumes": {
                "unmanagedFileSystems": [{"mountCommand": command, "relativeMountPath": "smb"}]
            },
        },
    )
    assert job["executionState"] == "succeeded", job.get("executionInfo")
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "cifs", "-f", "stdout.txt")
    assert out.stdout == "from the share\n"
    listed = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "cifs")
    assert "stdout.txt" in [f["name"] for f in listed]
    # what the job wrote is on the server, where another client of the share finds it
    on_server = samba.share_root / samba_share
    assert (on_server / "out" / "result.txt").read_text() == "written by the job\n"
    big = (on_server / "out" / "big.bin").read_bytes()
    assert len(big) == 6 * 1024 * 1024
    assert (on_server / "out" / "big.sha256").read_text().split()[0] == sha256(big).hexdigest()
    assert list(
        on_server.glob("*/*/workspaces/ws/experiments/exp/jobs/cifs/*/stdouterr/stdout.txt")
    )
    # the password in the mount command is nowhere in what the job logged
    log = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "cifs", "-f", "execution.log")
    assert samba.password not in log.stdout
    # nor in what the job shows (a token only the installation can open stands for it), nor
    # in its files' download links
    shown = bai("job", "show", "-w", "ws", "-e", "exp", "-n", "cifs").stdout
    assert samba.password not in shown and "password=sealed:" in shown
    assert samba.password not in json.dumps(listed)
    assert samba.password not in (bai.home / "openbai.db").read_bytes().decode(errors="replace")


def _ganesha_pid(bai: Bai, name: str = "nfs") -> int:
    state = json.loads(
        (bai.home / "file-servers" / "default" / "ws" / name / "server.json").read_text()
    )
    pid = int(state["pid"])
    assert psutil.Process(pid).name().startswith("ganesha")
    return pid


def _ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_file_server_delete_ends_its_nfs_daemon(workspace: Bai, nfs_ready: None) -> None:
    bai = workspace
    bai("file-server", "create", "-w", "ws", "-n", "short", "--disk-count", "1",
        "--disk-size", "10", "-s", "STANDARD_D14", "--storage-sku", "Standard_LRS")  # fmt: skip
    pid = _ganesha_pid(bai, "short")
    bai("file-server", "delete", "-w", "ws", "-n", "short", "-y")
    assert _ended(pid)
    assert bai.json("file-server", "list", "-w", "ws") == []


def test_workspace_delete_ends_its_file_servers_daemons(workspace: Bai, nfs_ready: None) -> None:
    bai = workspace
    for name in ("one", "two"):
        bai("file-server", "create", "-w", "ws", "-n", name, "--disk-count", "1",
            "--disk-size", "10", "-s", "STANDARD_D14", "--storage-sku", "Standard_LRS")  # fmt: skip
    pids = [_ganesha_pid(bai, name) for name in ("one", "two")]
    data = bai.home / "file-servers" / "default" / "ws" / "one" / "data"
    (data / "kept.txt").write_text("still here")
    bai("workspace", "delete", "-n", "ws", "-y")
    assert all(_ended(pid) for pid in pids)
    # the data stays, as a file server's own delete keeps it
    assert (data / "kept.txt").read_text() == "still here"


def test_a_bad_file_server_address_is_refused_naming_the_variable(workspace: Bai) -> None:
    bai = workspace
    bai.env["OPENBAI_FILE_SERVER_ADDRESS"] = "head-node"
    result = bai("file-server", "list", "-w", "ws", expect=2)
    assert "OPENBAI_FILE_SERVER_ADDRESS: 'head-node' is not an IP address" in result.stderr


def test_a_clusters_cifs_mount_command_keeps_its_password_hidden_and_works(
    workspace: Bai, samba: Samba, samba_share: str, tmp_path: Path
) -> None:
    bai = workspace
    command = (
        f"mount -t cifs //{samba.host}/{samba_share}"
        f" -o username={samba.user},password={samba.password},port={samba.port}"
    )
    cluster = tmp_path / "cluster.json"
    cluster.write_text(
        json.dumps(
            {
                "properties": {
                    "vmSize": "STANDARD_D1",
                    "scaleSettings": {"manual": {"targetNodeCount": 1}},
                    "nodeSetup": {
                        "mountVolumes": {
                            "unmanagedFileSystems": [
                                {"mountCommand": command, "relativeMountPath": "smb"}
                            ]
                        }
                    },
                }
            }
        )
    )
    bai("cluster", "create", "-w", "ws", "-n", "withsmb", "-f", str(cluster))
    shown = bai("cluster", "show", "-w", "ws", "-n", "withsmb").stdout
    assert samba.password not in shown and "password=sealed:" in shown
    job = write_job(
        tmp_path,
        _job_without_volumes(
            "$AZ_BATCHAI_MOUNT_ROOT/smb", "cat $AZ_BATCHAI_MOUNT_ROOT/smb/input.txt"
        ),
        "onsmb.json",
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "withsmb", "-n", "onsmb", "-f", job)
    assert bai.wait("onsmb", timeout=120)["executionState"] == "succeeded"
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "onsmb", "-f", "stdout.txt")
    assert out.stdout == "from the share\n"


def test_a_deleted_file_server_is_not_started_again_by_a_cluster_that_mounted_it(
    workspace: Bai, file_server: dict[str, Any], tmp_path: Path
) -> None:
    bai = workspace
    bai("cluster", "create", "-w", "ws", "-n", "withnfs", "--nodes", "1", "--nfs", "nfs",
        "--nfs-mount-path", "data")  # fmt: skip
    pid = _ganesha_pid(bai)
    bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y")
    assert _ended(pid)
    job = write_job(tmp_path, _job_without_volumes("$AZ_BATCHAI_MOUNT_ROOT/data", "echo never"))
    # accepted (the cluster's volumes were checked when it was created), then failed when
    # planned, naming the file server
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "withnfs", "-n", "late", "-f", job)
    failed = bai.wait("late", timeout=60)
    assert failed["executionState"] == "failed"
    message = failed["executionInfo"]["errors"][0]["message"]
    assert message == "file server default/ws/nfs of the volume at 'data' was deleted"
    server = NfsServer(bai.home / "file-servers" / "default" / "ws" / "nfs")
    assert not server.is_running()


def _fuse_daemons(log: str) -> dict[int, str]:
    """The FUSE daemons a job's execution log says it mounted its volumes with: pid -> path."""
    found = re.findall(r"mounted .* at (\S+) with FUSE \(openbai, pid (\d+)\)", log)
    return {int(pid): path for path, pid in found}


@pytest.fixture
def short_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unmounting gives up on a server that is gone after 2 s, not the default 120 s."""
    monkeypatch.setenv("OPENBAI_MOUNT_FLUSH_TIMEOUT", "2")


@pytest.mark.timeout(600)  # the first write waits out libnfs's 30 s timeout, the next fail at once
def test_a_file_server_that_goes_away_mid_job_fails_it_naming_the_file(
    short_flush: None,
    workspace: Bai,
    file_server: dict[str, Any],
    tmp_path: Path,
    gates: Path,
    taken_port: list[socket.socket],
) -> None:
    bai = workspace
    # stdout goes to a share of its own, which stays up while the file server goes away
    bai("storage", "account", "create", "-n", "local")
    bai("storage", "share", "create", "--account", "local", "-n", "logs")
    opened = bai.home / "storage" / "local" / "file" / "logs" / "opened"
    go = gates / "go"
    script = gates / "write.py"
    script.write_text(
        "import os, sys, time\n"
        "root = os.environ['AZ_BATCHAI_JOB_MOUNT_ROOT']\n"
        "fd = os.open(os.path.join(root, 'nfs', 'progress.txt'), os.O_WRONLY | os.O_CREAT)\n"
        "os.write(fd, b'epoch 0\\n')\n"
        "os.fsync(fd)\n"
        "open(os.path.join(root, 'logs', 'opened'), 'w').close()\n"  # tell the test
        "while not os.path.exists(sys.argv[1]): time.sleep(0.05)\n"
        "for epoch in range(1, 4):\n"
        "    try:\n        os.write(fd, b'epoch %d\\n' % epoch)\n        os.fsync(fd)\n"
        "    except OSError as e:\n        print('write failed:', e)\n"
        "try:\n    os.close(fd)\nexcept OSError as e:\n    print('close failed:', e)\n"
    )  # fmt: skip
    properties = nfs_job(file_server["id"], f"python3 {script} {go}")
    properties["stdOutErrPathPrefix"] = "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"
    properties["mountVolumes"]["azureFileShares"] = [
        {"azureFileUrl": "https://local.file.core.windows.net/logs", "relativeMountPath": "logs"}
    ]
    job = write_job(tmp_path, properties, "gone.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "gone", "-f", job)
    wait_until(opened.exists, "file the job opened on the file server", timeout=120)
    # the running job's execution log, on the logs share's disk
    (running_log,) = opened.parent.glob(
        "*/*/workspaces/ws/experiments/exp/jobs/gone/*/stdouterr/execution.log"
    )
    daemons = _fuse_daemons(running_log.read_text())
    assert [path.rpartition("/")[2] for path in daemons.values()] == ["nfs"], daemons
    assert all("openbai.mounts.fuse_daemon" in psutil.Process(pid).cmdline() for pid in daemons)
    # gone for good: the dispatcher starts a dead server of a running job again, so its port
    # is taken by another program before anything can (under the lock every start takes)
    server = NfsServer(bai.home / "file-servers" / "default" / "ws" / "nfs")
    state = server.state()
    assert state is not None
    lock = os.open(server.directory / "lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stop_daemon(state.pid, state.started_at)
        taken_port.append(socket.create_server((state.host, state.port)))
    finally:
        os.close(lock)
    assert not server.is_running()
    go.touch()

    failed = bai.wait("gone", timeout=300)
    assert failed["executionState"] == "failed", failed
    errors = failed["executionInfo"]["errors"]
    # the unmount that gave up, and the writes the job was refused, which name the file
    assert {e["code"] for e in errors} == {"OutputUploadFailed"}, errors
    named = [e for e in errors if "these files may miss data: shared/progress.txt" in e["message"]]
    assert named, errors
    log = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "gone", "-f", "execution.log")
    assert re.search(r"nfs: at \d{4}/\d\d/\d\d \d\d:\d\d:\d\d the job got \w+ on .*progress\.txt",
                     log.stdout), log.stdout  # fmt: skip
    # what the job wrote before the server went away is on the server
    data = bai.home / "file-servers" / "default" / "ws" / "nfs" / "data" / "shared"
    assert (data / "progress.txt").read_bytes().startswith(b"epoch 0\n")
    # no daemon nor mount of that volume is left behind
    assert all(_ended(pid) for pid in daemons)
    mounted = Path("/proc/mounts").read_text()
    assert not [point for point in daemons.values() if f" {point} " in mounted]
