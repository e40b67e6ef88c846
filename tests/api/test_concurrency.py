"""Many clients at once against a real server: no lost update, no 5xx."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from conftest import Bai

from .support import API, Server, job_body

THREADS = 50
JOBS_PER_THREAD = 2


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
