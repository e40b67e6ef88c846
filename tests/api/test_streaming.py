"""Following a job's output through a real server: each line reaches the client soon after
the job wrote it, the stream ends with the job, and a broken stream resumes."""

from __future__ import annotations

import statistics
import time

from openbai.cli.remote import RemoteClient

from .support import API, job_body

WRITER = (
    "python3 -u -c 'import time\n"
    "for i in range(80):\n"
    "    print(repr(time.time()), flush=True); time.sleep(0.025)'"
)


def setup_job(server, bai, command):
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    base = f"/subscriptions/{server.subscription}/resourceGroups/rg/providers/Microsoft.BatchAI"
    with server.client() as http:
        http.put(f"{base}/workspaces/ws?{API}", json={"location": "local"})
        http.put(f"{base}/workspaces/ws/experiments/exp?{API}")
        scale = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}}
        http.put(f"{base}/workspaces/ws/clusters/c1?{API}", json=scale)
        created = http.put(
            f"{base}/workspaces/ws/experiments/exp/jobs/j?{API}", json=job_body(command)
        )
        assert created.status_code == 200, created.text
    return RemoteClient(server.url, server.token)


def test_lines_arrive_within_the_latency_goal(server, bai):
    client = setup_job(server, bai, WRITER)
    latencies, buffer = [], b""
    for chunk in client.stream_job_file(
        "rg", "ws", "exp", "j", "stdout.txt", directory_id="stdouterr", path="."
    ):
        now = time.time()
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        latencies += [now - float(line) for line in lines]
    job = client.get_job("rg", "ws", "exp", "j")
    state = (job["properties"]["executionState"], job["properties"]["executionInfo"])
    assert len(latencies) == 80 and buffer == b"", str(state)  # every line, then the end
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]
    print(f"stream latency p50 {p50:.3f}s p99 {p99:.3f}s")
    assert p50 <= 0.1 and p99 <= 0.5, (p50, p99)
    state = client.get_job("rg", "ws", "exp", "j")["properties"]["executionState"]
    assert state == "succeeded"
    client.close()


def test_a_broken_stream_resumes_from_its_offset(server, bai):
    client = setup_job(server, bai, "for i in $(seq 1 30); do echo line $i; sleep 0.03; done")
    args = ("rg", "ws", "exp", "j", "stdout.txt")
    first = b""
    stream = client.stream_job_file(*args, directory_id="stdouterr", path=".")
    for chunk in stream:
        first += chunk
        if len(first) > 20:
            break
    stream.close()  # the client went away mid-file
    rest = b"".join(
        client.stream_job_file(*args, directory_id="stdouterr", path=".", offset=len(first))
    )
    assert first + rest == b"".join(f"line {i}\n".encode() for i in range(1, 31))
    client.close()
