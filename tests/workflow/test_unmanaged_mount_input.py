"""What ``unmanagedFileSystems[].mountCommand`` may hold, checked when a job or cluster is
created (storage/nfs_command.py): a source's host is a host name or an address, nothing a
client's URL reads more into, and no password is kept where it would be shown."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from conftest import Bai
from samba_fixture import Samba

from openbai.installation import App
from openbai.plan.job_plan import MountSpec
from openbai.scheduling.locations import MountedVolume
from openbai.scheduling.volumes import mount_specs
from openbai.storage import nfs_command
from openbai.storage.base import VolumeKind
from openbai.storage.samba_shares import SambaShares

from .conftest import write_job

FIELD = "unmanagedFileSystems[0].mountCommand"


def _job(command: str) -> dict[str, Any]:
    return {
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/u",
        "customToolkitSettings": {"commandLine": "true"},
        "mountVolumes": {
            "unmanagedFileSystems": [{"mountCommand": command, "relativeMountPath": "u"}]
        },
    }


def test_a_source_host_read_as_a_libnfs_url_is_refused_naming_the_field(
    workspace: Bai, tmp_path: Path
) -> None:
    """``127.0.0.1/mnt/data?nfsport=P&mountport=M:/y`` is no host: libnfs reads it as the
    export and ports of a file server the check by address never saw."""
    bai = workspace
    for command in [
        "mount -t nfs 127.0.0.1/mnt/data?nfsport=46137&mountport=46707:/y",
        "mount -t nfs4 '127.0.0.1/?nfsport=46137#:/y'",
        "mount -t cifs '//u@127.0.0.1/share'",
        "mount -t glusterfs '127.0.0.1/x?y:/gv0'",
    ]:
        job = write_job(tmp_path, _job(command), "bad.json")
        refused = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "bad",
                      "-f", job, expect=2)  # fmt: skip
        assert f"properties.mountVolumes.{FIELD}" in refused.stderr, command
        assert "is not a host name, an IPv4 address" in refused.stderr, command
        cluster = tmp_path / "cluster.json"
        cluster.write_text(
            json.dumps(
                {"properties": {"nodeSetup": {"mountVolumes": _job(command)["mountVolumes"]}}}
            )
        )
        refused = bai("cluster", "create", "-w", "ws", "-n", "bad", "-f", str(cluster), expect=2)
        assert f"properties.nodeSetup.mountVolumes.{FIELD}" in refused.stderr, command
    assert bai.json("job", "list", "-w", "ws", "-e", "exp") == []


def test_passwords_in_every_form_are_sealed_or_refused(workspace: Bai, tmp_path: Path) -> None:
    bai = workspace
    for name, command in [
        ("space", "mount -t cifs //127.0.0.1:1/share -o 'username=u,password =SpaceSecret1'"),
        ("attached", "mount -t cifs //127.0.0.1:1/share -opassword=AttachedSecret3,username=u"),
    ]:
        job = write_job(tmp_path, _job(command), f"{name}.json")
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", name, "-f", job)
        shown = bai("job", "show", "-w", "ws", "-e", "exp", "-n", name).stdout
        assert "Secret" not in shown and "password=sealed:" in shown, shown
    command = "mount -t cifs //127.0.0.1:1/share -o username=u%PctSecret2"
    job = write_job(tmp_path, _job(command), "pct.json")
    refused = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "pct",
                  "-f", job, expect=2)  # fmt: skip
    assert f"properties.mountVolumes.{FIELD}" in refused.stderr
    assert "USER%PASSWORD is not read" in refused.stderr and "PctSecret2" not in refused.stderr
    assert "Secret" not in (bai.home / "openbai.db").read_bytes().decode(errors="replace")


def test_a_token_no_key_here_opens_fails_the_mount_naming_it_not_the_key_file(
    app: App,
) -> None:
    command = "mount -t cifs //127.0.0.1:1/share -o username=u,password=sealed:garbage5"
    mounted = MountedVolume(
        "AZ_BATCHAI_JOB_MOUNT_ROOT", "u", nfs_command.PREFIX + command, VolumeKind.FILE, "share"
    )
    (spec,) = mount_specs(app, [mounted])
    assert isinstance(spec, MountSpec) and spec.backend == "refused"
    reason = spec.options["reason"]
    assert "its sealed password cannot be opened" in reason and "garbage5" not in reason
    assert "secret.key" not in reason and str(app.settings.home) not in reason


def test_a_token_shown_with_another_job_does_not_lend_its_password(
    workspace: Bai, samba: Samba, tmp_path: Path
) -> None:
    """``bai job show`` shows a cifs password as ``sealed:TOKEN``: the token given in another
    job's mount command is that job's literal text, not the password it stands for."""
    bai = workspace
    name = f"cifs{uuid.uuid4().hex[:10]}"
    shares = SambaShares(samba.config)
    shares.create_share(name)
    try:
        (samba.share_root / name / "input.txt").write_text("theirs\n")
        source = f"//{samba.host}/{name}"
        options = f"username={samba.user},password={samba.password},port={samba.port}"
        theirs = {**_job(f"mount -t cifs {source} -o {options}"),
                  "customToolkitSettings": {"commandLine": "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/u/input.txt"}}  # fmt: skip
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "theirs",
            "-f", write_job(tmp_path, theirs, "theirs.json"))  # fmt: skip
        assert bai.wait("theirs", timeout=120)["executionState"] == "succeeded"
        shown = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "theirs")
        (mount,) = shown["mountVolumes"]["unmanagedFileSystems"]
        token = re.search(r"password=(sealed:[^,\s']+)", mount["mountCommand"])
        assert token is not None and samba.password not in json.dumps(shown)
        stolen = f"username={samba.user},password={token[1]},port={samba.port}"
        mine = _job(f"mount -t cifs {source} -o {stolen}")
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "mine",
            "-f", write_job(tmp_path, mine, "mine.json"))  # fmt: skip
        failed = bai.wait("mine", timeout=120)
        assert failed["executionState"] == "failed", failed
        assert samba.password not in json.dumps(failed)
    finally:
        shares.delete_share(name)
