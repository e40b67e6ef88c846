from openbai.scheduling.locations import MountedVolume, VolumeLocation, locate
from openbai.storage.base import VolumeKind

MOUNTS = [
    MountedVolume("AZ_BATCHAI_JOB_MOUNT_ROOT", "logs", "acct", VolumeKind.FILE, "logs"),
    MountedVolume(
        "AZ_BATCHAI_JOB_MOUNT_ROOT", "afs/deep", "acct", VolumeKind.FILE, "share", "sub/dir"
    ),
    MountedVolume("AZ_BATCHAI_MOUNT_ROOT", "external", "acct", VolumeKind.BLOB, "ext"),
]


def test_a_path_on_a_mount_is_located_in_its_volume() -> None:
    assert locate("$AZ_BATCHAI_JOB_MOUNT_ROOT/logs", MOUNTS) == VolumeLocation(
        "acct", VolumeKind.FILE, "logs", ""
    )
    assert locate("${AZ_BATCHAI_JOB_MOUNT_ROOT}/logs/a/b", MOUNTS) == VolumeLocation(
        "acct", VolumeKind.FILE, "logs", "a/b"
    )
    assert locate("$AZ_BATCHAI_JOB_MOUNT_ROOT/afs/deep/x", MOUNTS) == VolumeLocation(
        "acct", VolumeKind.FILE, "share", "sub/dir/x"
    )
    assert locate("$AZ_BATCHAI_MOUNT_ROOT/external/m", MOUNTS) == VolumeLocation(
        "acct", VolumeKind.BLOB, "ext", "m"
    )


def test_paths_off_the_mounts_are_not_located() -> None:
    assert locate("$AZ_BATCHAI_JOB_TEMP/logs", MOUNTS) is None
    assert locate("$AZ_BATCHAI_JOB_MOUNT_ROOT/logsx", MOUNTS) is None
    assert locate("/absolute/path", MOUNTS) is None
    assert (
        locate("$AZ_BATCHAI_MOUNT_ROOT/logs", MOUNTS) is None
    )  # a job mount is not a cluster mount
    assert locate("$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/../../etc", MOUNTS) is None
