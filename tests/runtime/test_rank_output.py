"""rank_output.py with real processes and sockets: the collector and its relays (started here
by a shell, as mpirun starts them) turn ranks' interleaved chunks into whole lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from openbai.runtime.rank_output import LineWriter, collector_argv

#: a rank that writes its lines in pieces cut mid-line, flushing after each piece
RANK = """\
import os, sys
rank = sys.argv[1]
assert not any(k.startswith("OPENBAI_RANK_") for k in os.environ), "the collector's variables leak"
with open("/dev/stdout", "w") as also:  # a pipe, as under mpirun: it can be opened
    also.write(f"rank {rank} opened /dev/stdout\\n")
text = "".join(f"rank {rank} line {i}\\n" for i in range(3000))
for start in range(0, len(text), 7):
    sys.stdout.write(text[start : start + 7])
    sys.stdout.flush()
sys.stderr.write(f"rank {rank} done\\n")
sys.exit(int(rank) + 3)
"""


def run_collector(tmp_path: Path, shell: str) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "rank.py").write_text(RANK)
    return subprocess.run(
        collector_argv("127.0.0.1", ["bash", "-c", shell]),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )


def test_two_relays_writing_mid_line_pieces_give_whole_lines_in_order(tmp_path: Path) -> None:
    relay = '"$OPENBAI_RANK_RELAY" -m openbai.runtime.rank_output relay'
    done = run_collector(
        tmp_path,
        f"{relay} {sys.executable} rank.py 0 & {relay} {sys.executable} rank.py 1; s=$?; wait; exit $s",
    )
    assert done.returncode == 4, done.stderr  # the shell's exit code, rank 1's
    lines = done.stdout.decode().split("\n")
    assert lines.pop() == ""
    for rank in "01":
        mine = [line for line in lines if line.startswith(f"rank {rank} ")]
        assert mine == [
            f"rank {rank} opened /dev/stdout",
            *(f"rank {rank} line {i}" for i in range(3000)),
        ]
    assert len(lines) == 2 * 3001  # nothing else, no line made of two ranks' pieces
    assert sorted(done.stderr.decode().splitlines()) == ["rank 0 done", "rank 1 done"]


def test_a_connection_without_the_token_writes_nothing(tmp_path: Path) -> None:
    forge = (
        "import os, socket; host, port, _ = os.environ['OPENBAI_RANK_OUTPUT'].split(); "
        "s = socket.create_connection((host, int(port))); s.sendall(b'guess 1\\nforged\\n'); s.close()"
    )
    done = run_collector(tmp_path, f'{sys.executable} -c "{forge}"; echo direct')
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"direct\n"


def test_relay_without_a_collector_is_the_rank_itself(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBAI_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openbai.runtime.rank_output",
            "relay",
            "bash",
            "-c",
            "echo hi; exit 5",
        ],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (5, b"hi\n")


def test_line_writer_writes_whole_lines_per_source(tmp_path: Path) -> None:
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        writer = LineWriter(fd)
        writer.feed("a", b"a1 st")
        writer.feed("b", b"b1 whole\nb2 st")
        writer.feed("a", b"art\na2\r")  # a trailing \r may be the first half of \r\n
        assert path.read_bytes() == b"b1 whole\na1 start\n"
        writer.feed("a", b"\n10%\r20%\r")  # a progress bar's updates are lines of their own
        writer.feed("b", b"art\n")
        writer.close("a")  # the end of a source writes what it had, as it was
        assert path.read_bytes() == b"b1 whole\na1 start\na2\r\n10%\rb2 start\n20%\r"
    finally:
        os.close(fd)
