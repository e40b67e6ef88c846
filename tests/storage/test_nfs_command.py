"""unmanagedFileSystems' mount commands read as the storage they name (storage/nfs_command.py)."""

from __future__ import annotations

import pytest

from openbai.errors import MountError
from openbai.storage.nfs_command import (
    parse_mount_command,
    redact,
    seal_passwords,
    unseal_passwords,
)


def test_nfs_command_names_the_export_and_its_ports() -> None:
    source = parse_mount_command("sudo mount -t nfs -o vers=3,port=2049,mountport=20048 h:/data")
    assert source.kind == "nfs"
    assert source.volume == "/data"
    assert source.options == {
        "host": "h",
        "export": "/data",
        "version": 3,
        "port": 2049,
        "mount_port": 20048,
    }
    assert parse_mount_command("mount -t nfs4 h:/data").options["version"] == 4
    assert parse_mount_command("mount -t nfs -o vers=4.1 h:/data").options["version"] == 4
    assert parse_mount_command("mount -t nfs -o nfsvers=3 h:/data").options["version"] == 3


def test_cifs_command_names_the_share_and_its_credentials() -> None:
    source = parse_mount_command(
        "mount -t cifs //10.0.0.5/share/sub -o vers=3.0,username=u,password=p=w,port=4450"
    )
    assert source.kind == "azure"
    assert source.volume == "share"
    assert source.options == {
        "file_endpoint": "10.0.0.5:4450",
        "account_name": "u",
        "account_key": "p=w",
        "subpath": "sub",
    }


def test_glusterfs_command_names_the_volume_its_directory_and_servers() -> None:
    source = parse_mount_command(
        "mount -t glusterfs 10.0.0.4:/gv0/runs/a"
        " -o ro,server-port=24008,backup-volfile-servers=10.0.0.6:10.0.0.7"
    )
    assert source.kind == "gluster"
    assert source.volume == "gv0"
    assert source.options == {
        "host": "10.0.0.4",
        "port": 24008,
        "backup_servers": ["10.0.0.6", "10.0.0.7"],
        "read_only": True,
        "subpath": "runs/a",
    }
    plain = parse_mount_command("mount -t glusterfs 10.0.0.4:/gv0")
    assert (plain.volume, plain.options["port"], plain.options["subpath"]) == ("gv0", 0, "")


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("mount -t sshfs u@h:/data", "no sshfs file system"),
        ("./my-mount.sh h:/data", "runs only 'mount -t TYPE SOURCE'"),
        ("mount -t glusterfs h", "a glusterfs source is HOST:/VOLUME"),
        ("mount -t glusterfs h:/gv0 -o server-port=x", "server-port=x is not a port"),
        ("mount -t nfs -o port=x h:/data", "port=x is not a port (0-65535)"),
        ("mount -t nfs -o port=99999999 h:/data", "port=99999999 is not a port (0-65535)"),
        ("mount -t nfs -o mountport=-1 h:/data", "mountport=-1 is not a port"),
        ("mount -t nfs -o vers=2 h:/data", "vers=2: openbai's NFS client speaks versions 3 and 4"),
        ("mount -t nfs -o nfsvers=4.x h:/data", "nfsvers=4.x: openbai's NFS client speaks"),
        ("mount -t cifs //h:44x/share", "the port of '//h:44x/share' is not a port"),
        ("mount -t cifs //h:65536/share", "the port of '//h:65536/share' is not a port"),
        ("mount -t cifs //h/share -o port=4o", "port=4o is not a port"),
        ("mount -t nfs h/data", "an NFS source is HOST:/export"),
        ("mount -t cifs h/share", "a cifs source is //HOST/SHARE"),
    ],
)
def test_a_command_openbai_cannot_mount_is_refused_naming_it(command: str, said: str) -> None:
    with pytest.raises(MountError) as info:
        parse_mount_command(command)
    assert said in info.value.message
    assert redact(command) in info.value.message


def test_the_password_is_left_out_of_what_is_shown() -> None:
    command = "mount -t cifs //h/s -o username=u,password=s3cret,port=445"
    assert "s3cret" not in redact(command)
    with pytest.raises(MountError) as info:
        parse_mount_command("mount -t cifs h/s -o username=u,password=s3cret")
    assert "s3cret" not in info.value.message


def test_passwords_are_sealed_for_storing_and_opened_for_mounting() -> None:
    command = "mount -t cifs //h/s -o username=u,password=s3cret,port=445"
    sealed = seal_passwords(command, lambda p: p[::-1].upper())
    assert sealed == "mount -t cifs //h/s -o username=u,password=sealed:TERC3S,port=445"
    assert seal_passwords(sealed, lambda p: "again") == sealed  # sealed once only
    assert unseal_passwords(sealed, lambda t: t.lower()[::-1]) == command
    assert parse_mount_command(sealed).options["account_key"] == "sealed:TERC3S"
    assert unseal_passwords(command, lambda t: "unused") == command


@pytest.mark.parametrize(
    "options",
    ['-o username=u,password="s3cret Q"', "-o username=u,password='s3cret Q'",
     "-o 'username=u,password=s3cret Q,port=445'", '-o "username=u,password=s3cret Q"'],
)  # fmt: skip
def test_a_quoted_password_is_sealed_and_left_out_whole(options: str) -> None:
    command = f"mount -t cifs //h/s {options}"
    sealed = seal_passwords(command, lambda p: "TOKEN")
    assert "s3cret" not in sealed and "Q" not in sealed.replace("TOKEN", "")
    assert parse_mount_command(sealed).options["account_key"] == "sealed:TOKEN"
    opened = unseal_passwords(sealed, lambda t: "s3cret Q")
    assert parse_mount_command(opened).options["account_key"] == "s3cret Q"
    assert "s3cret" not in redact(command) and "Q" not in redact(command)
    assert "bypass=x" in redact("mount -t cifs //h/s -o bypass=x,password=y")
