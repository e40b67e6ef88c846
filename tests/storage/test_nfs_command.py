"""unmanagedFileSystems' mount commands read as the storage they name (storage/nfs_command.py)."""

from __future__ import annotations

from typing import Any

import pytest

from openbai.errors import MountError
from openbai.storage.nfs_command import (
    check_mount_command,
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
    # a user's command is sealed once, when it is given: a token in it is sealed again
    assert seal_passwords(sealed, lambda p: "again").endswith("password=sealed:again,port=445")
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


EXPLOIT = "mount -t nfs 127.0.0.1/mnt/data?nfsport=46137&mountport=46707:/y"


@pytest.mark.parametrize(
    "command",
    [
        EXPLOIT,
        "mount -t nfs 'h?nfsport=1:/y'",
        "mount -t nfs 'h&x:/y'",
        "mount -t nfs 'h#x:/y'",
        "mount -t nfs 'u@h:/y'",
        "mount -t nfs 'h%2f:/y'",
        "mount -t nfs 'h x:/y'",
        "mount -t nfs 'h/x:/y'",
        "mount -t nfs4 'h/x?version=3:/y'",
        "mount -t nfs '[::1%eth0]:/y'",
        "mount -t nfs '[not-v6]:/y'",
        "mount -t nfs 'a..b:/y'",
        "mount -t nfs 'a-.b:/y' -o vers=3",
        "mount -t cifs '//h?x/share'",
        "mount -t cifs '//u@h/share'",
        "mount -t cifs '//h%2f/share'",
        "mount -t cifs '//h x/share'",
        "mount -t glusterfs 'h/x?y:/gv0'",
        "mount -t glusterfs 'h#x:/gv0'",
        "mount -t glusterfs h:/gv0 -o backup-volfile-servers=a/b?c",
    ],
)
def test_a_source_whose_host_is_no_host_name_or_address_is_refused_naming_it(
    command: str,
) -> None:
    """libnfs reads ``nfs://HOST/...`` as a URL: a host with ``/`` or ``?`` in it sets the
    export and ports the check against the installation's file servers never saw."""
    with pytest.raises(MountError) as info:
        check_mount_command(command)
    assert "is not a host name, an IPv4 address or a bracketed IPv6 address" in info.value.message


@pytest.mark.parametrize(
    ("command", "host"),
    [
        ("mount -t nfs nfs.example.com:/data", "nfs.example.com"),
        ("mount -t nfs 10.0.0.4:/data", "10.0.0.4"),
        ("mount -t nfs [::1]:/data", "::1"),
        ("mount -t nfs4 [2001:db8::4]:/", "2001:db8::4"),
        ("mount -t glusterfs [::1]:/gv0", "::1"),
    ],
)
def test_host_names_and_addresses_are_mounted(command: str, host: str) -> None:
    assert parse_mount_command(command).options["host"] == host


def test_a_cifs_host_may_be_a_bracketed_ipv6_address() -> None:
    source = parse_mount_command("mount -t cifs //[::1]:4450/share/sub -o username=u,password=p")
    assert source.options["file_endpoint"] == "[::1]:4450"
    assert (
        parse_mount_command("mount -t cifs //nfs-1.example.com/s").options["file_endpoint"]
        == "nfs-1.example.com:445"
    )


def test_the_libnfs_url_is_built_of_checked_parts_only() -> None:
    from openbai.errors import StorageError
    from openbai.storage.nfs_client import Server

    assert Server("10.0.0.4", "/a?b", 3, 2049, 20048).url() == (
        "nfs://10.0.0.4/a%3Fb?version=3&nfsport=2049&mountport=20048"
    )
    with pytest.raises(StorageError):
        Server("127.0.0.1/mnt/data?nfsport=1&mountport=2", "/y").url()


def test_an_ill_formed_host_is_not_taken_for_one_reaching_no_file_server(tmp_path: Any) -> None:
    from openbai.storage import nfs_endpoints

    with pytest.raises(MountError):
        nfs_endpoints.file_server_named(tmp_path, "127.0.0.1/mnt/data?nfsport=1", {0})
    assert nfs_endpoints.file_server_named(tmp_path, "no-such-host.invalid", {0}) is None


def test_a_sealed_token_the_user_gives_opens_to_its_own_text() -> None:
    """A token is shown with the job holding it: given in another job's command it must not
    open to that job's password."""
    tokens: dict[str, str] = {}

    def seal(password: str) -> str:
        tokens[f"T{len(tokens)}"] = password
        return f"T{len(tokens) - 1}"

    theirs = seal_passwords("mount -t cifs //h/s -o username=u,password=theirs", seal)
    assert theirs == "mount -t cifs //h/s -o username=u,password=sealed:T0"
    mine = seal_passwords("mount -t cifs //h/s -o username=u,password=sealed:T0", seal)
    assert "sealed:T0" not in mine
    opened = unseal_passwords(mine, tokens.__getitem__)
    assert parse_mount_command(opened).options["account_key"] == "sealed:T0"


@pytest.mark.parametrize(
    "command",
    [
        "mount -t cifs //h/s -o 'username=u,password =SpaceSecret1'",
        "mount -t cifs //h/s -o 'username=u, password = SpaceSecret1 ,port=445'",
        "mount -t cifs //h/s -opassword=SpaceSecret1,username=u",
        "mount -t cifs //h/s --options=username=u,pass=SpaceSecret1",
        "mount -t cifs //h/s -o username=u -o password=SpaceSecret1",
    ],
)
def test_every_password_the_mount_uses_is_sealed(command: str) -> None:
    assert parse_mount_command(command).options["account_key"] == "SpaceSecret1"
    sealed = seal_passwords(command, lambda p: "TOKEN")
    assert "SpaceSecret1" not in sealed and "SpaceSecret1" not in redact(command)
    assert parse_mount_command(sealed).options["account_key"] == "sealed:TOKEN"
    opened = unseal_passwords(sealed, lambda t: "SpaceSecret1")
    assert parse_mount_command(opened).options["account_key"] == "SpaceSecret1"


def test_a_password_option_in_another_case_is_sealed_too() -> None:
    """The mount does not read it as the password, but it is one: never stored in clear."""
    command = "mount -t cifs //h/s -o username=u,PASSWORD=CaseSecret5,password=p"
    sealed = seal_passwords(command, lambda p: f"T-{len(p)}")
    assert "CaseSecret5" not in sealed and "CaseSecret5" not in redact(command)
    assert "CaseSecret5" in unseal_passwords(sealed, lambda t: "CaseSecret5")


@pytest.mark.parametrize(
    "command",
    [
        "mount -t cifs //h/s -o username=u%PctSecret2",
        "mount -t cifs //h/s -o 'user = u%PctSecret2,port=445'",
        "mount -t sshfs h:/x -o username=u%PctSecret2",
    ],
)
def test_a_password_in_the_user_name_is_refused_and_left_out(command: str) -> None:
    with pytest.raises(MountError) as info:
        check_mount_command(seal_passwords(command, lambda p: "TOKEN"))
    assert "USER%PASSWORD is not read" in info.value.message
    assert "PctSecret2" not in info.value.message and "PctSecret2" not in redact(command)


def test_an_unreadable_command_keeps_its_password_out_of_the_refusal() -> None:
    command = "mount -t cifs //h/s -o 'username=u%Pct,password =Sp"
    with pytest.raises(MountError) as info:
        check_mount_command(seal_passwords(command, lambda p: "TOKEN"))
    assert "Pct" not in info.value.message and "Sp" not in info.value.message
