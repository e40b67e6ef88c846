"""Many clients at once against a real server, with one process or several workers (``bai
serve --workers 2``): no lost update, no 5xx, every job run."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from conftest import Bai
from polling import wait_until

from .support import API, Server, job_body, start_server

THREADS = 50
JOBS_PER_THREAD = 2


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def server(bai: Bai, request: pytest.FixtureRequest) -> Iterator[Server]:
    running = start_server(bai.home, {**bai.env, "OPENBAI_WORKERS": str(request.param)})
    processes = [psutil.Process(running.process.pid)]
    processes += processes[0].children(recursive=True)
    yield running
    assert running.stop() == 0
    # the workers go with the server (a worker left behind would keep the port)
    wait_until(lambda: not any(p.is_running() and p.status() != "zombie" for p in processes),
               "every process of the server gone")  # fmt: skip


def test_fifty_threads_create_and_list_jobs(server: Server, bai: Bai) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    base = f"/subscriptions/{server.subscription}/resourceGroups/rg/providers/Microsoft.BatchAI"
    exp = f"{base}/workspaces/ws/experiments/exp"
    with server.client() as http:
        assert (
            http.put(f"{base}/workspaces/ws?{API}", json={"location": "local"}).status_code == 200
        )
        assert http.put(f"{exp}?{API}").status_code == 200
        scale = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}}
        assert http.put(f"{base}/workspaces/ws/clusters/c1?{API}", json=scale).status_code == 200

    def work(worker: int) -> list[int]:
        statuses = []
        with server.client(timeout=120) as http:
            for i in range(JOBS_PER_THREAD):
                name = f"w{worker}-j{i}"
                created = http.put(f"{exp}/jobs/{name}?{API}", json=job_body("true"))
                statuses.append(created.status_code)
                # everyone also races for the same name: exactly one wins
                statuses.append(
                    http.put(f"{exp}/jobs/shared?{API}", json=job_body("true")).status_code
                )
                listed = http.get(f"{exp}/jobs?{API}&maxresults=50")
                statuses.append(listed.status_code)
                shown = http.get(f"{exp}/jobs/{name}?{API}")
                statuses.append(shown.status_code)
                assert shown.json()["name"] == name
        return statuses

    with ThreadPoolExecutor(THREADS) as pool:
        results = [s for statuses in pool.map(work, range(THREADS)) for s in statuses]
    assert not [s for s in results if s >= 500]
    assert results.count(409) == THREADS * JOBS_PER_THREAD - 1  # every "shared" but one

    with server.client() as http:
        names = []
        link: str | None = f"{exp}/jobs?{API}&maxresults=17"
        while link:
            page = http.get(link).json()
            names += [j["name"] for j in page["value"]]
            link = page.get("nextLink")
    expected = {f"w{w}-j{i}" for w in range(THREADS) for i in range(JOBS_PER_THREAD)} | {"shared"}
    assert sorted(names) == sorted(expected)  # nothing lost, nothing twice

    # the dispatcher (in the serving process) was woken by whichever worker took each job
    def all_ended() -> bool:
        with server.client() as http:
            link: str | None = f"{exp}/jobs?{API}&maxresults=500"
            states = []
            while link:
                page = http.get(link).json()
                states += [j["properties"]["executionState"] for j in page["value"]]
                link = page.get("nextLink")
        return set(states) == {"succeeded"}

    wait_until(all_ended, "every job succeeded", timeout=180)
