"""The kernel read-ahead of a mount: finding its backing device in the mount table."""

from __future__ import annotations

from openbai.mounts.bdi import device_of

MOUNTINFO = """\
22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
97 30 0:52 / /tmp/job/mounts/data rw,nosuid,nodev - fuse.openbai openbai:acct/c rw
98 30 0:53 / /tmp/with\\040space rw - fuse.openbai openbai:acct/d rw
99 30 0:60 / /tmp/job/mounts/data rw,nosuid,nodev - fuse.openbai openbai:acct/e rw
"""


def test_the_device_of_a_mount_point_is_the_last_mounted_there() -> None:
    assert device_of("/tmp/job/mounts/data", MOUNTINFO) == "0:60"
    assert device_of("/tmp/with space", MOUNTINFO) == "0:53"
    assert device_of("/tmp/job", MOUNTINFO) is None
