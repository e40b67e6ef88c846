"""The REST server, measured: GET of one job and list-jobs pages with 10,000 jobs in one
experiment, through a real ``bai serve`` on 127.0.0.1.

``python -m bench api [--jobs 10000] [--gets 1000] [--page-size 1000] [--clients 50]
[--mix 80,10,10] [--load-seconds 20] [--workers 2] [--database postgresql://USER:PASSWORD@HOST/DB]
[--load-only]``

The server runs with ``bai serve --workers`` (default 2: one per core of these machines).

* GET job: p50/p99 over random jobs, against GET /healthz (the HTTP floor: no database)
  and the same read in-process through the service (the database floor), as ratios;
* list jobs: the latency of each page while paging through the whole experiment with
  ``nextLink`` (p50/p99 and the total), and of a first page of 100;
* the web explorer's job list of that experiment: first, middle and last page, and a filtered
  one, against GET /healthz;
* under load: ``--clients`` concurrent clients, each on its own connection, for
  ``--load-seconds``, each request picked at random: 80% GET job, 10% the first list page of 100,
  10% create a job (on a cluster of no nodes, so the created jobs wait and the load stays the
  server's); requests/s over all, p50/p99 of each kind and the errors, against the goal
  (>= 500 requests/s, p99 of GET job <= 100 ms, no error), and the CPU the server's processes
  and the clients spent per request (less noisy than requests/s on a shared machine). The
  clients run in this process, on raw asyncio streams with prebuilt keep-alive requests (httpx
  cost about half a core), and share the machine's cores with the server;
* stream: a line a running job prints → the line received by ``RemoteClient.stream_job_file``
  (p50/p99), against reading the same file directly in a tight loop (the floor), as a ratio,
  and a check that every line arrived.

``--database`` runs it all on PostgreSQL: a fresh database is created on that server (the URL
names the database to connect to for that, as scripts/services/postgres.sh prints it) and
dropped afterwards. The jobs are inserted straight into the store (as ended jobs, so the server's dispatcher
leaves them alone), copying one job created through the service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from openbai.installation import App
from openbai.services import accounts, clusters, jobs, tokens, workspaces
from openbai.settings import Settings
from openbai.storage.base import VolumeKind
from openbai.store.models import Job

API = "api-version=2018-05-01"
JOB = {
    "properties": {
        "cluster": {"id": "c1"},
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": {
            "azureFileShares": [
                {
                    "azureFileUrl": "https://acct.file.core.windows.net/logs",
                    "relativeMountPath": "logs",
                }
            ]
        },
        "environmentVariables": [{"name": "EPOCHS", "value": "10"}],
        "customToolkitSettings": {"commandLine": "python train.py --epochs $EPOCHS"},
    }
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def populate(app: App, count: int) -> list[str]:
    """ws/exp/c1 and ``count`` ended jobs j00000...; returns their names."""
    app.on_change = lambda: None
    workspaces.create_workspace(app, "rg", "ws", {"location": "local"})
    workspaces.create_experiment(app, "rg", "ws", "exp")
    scale = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}}
    clusters.create_cluster(app, "rg", "ws", "c1", scale)
    empty = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 0}}}}
    clusters.create_cluster(app, "rg", "ws", "idle", empty)  # where the load's jobs wait
    accounts.create_account(app, "acct")
    accounts.create_volume(app, "acct", VolumeKind.FILE, "logs")
    jobs.create_job(app, "rg", "ws", "exp", "template", JOB)
    with app.db.session() as s:
        template = s.query(Job).filter_by(name="template").one()
        columns = {
            c.key: getattr(template, c.key)
            for c in Job.__table__.columns
            if c.key not in ("id", "name", "uid", "output_segment")
        }
        columns.update(execution_state="succeeded", exit_code=0)
        names = [f"j{i:05d}" for i in range(count)]
        rows = []
        for name in names:
            uid = str(uuid.uuid4())
            segment = (
                f"{app.settings.subscription_id}/rg/workspaces/ws/experiments/exp/jobs/{name}/{uid}"
            )
            rows.append({**columns, "name": name, "uid": uid, "output_segment": segment})
        s.execute(insert(Job), rows)
        s.delete(template)
    if app.db.engine.dialect.name == "postgresql":
        # what autovacuum does within a minute of a bulk load: without statistics PostgreSQL
        # guesses ~100 jobs an experiment and sorts all 10,000 for the first page of 100
        with app.db.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return names


def start_server(
    home: Path, database: str = "", workers: int = 1
) -> tuple[subprocess.Popen[bytes], str]:
    with socket_port() as port:
        pass
    bai = str(Path(sys.executable).with_name("bai"))
    process = subprocess.Popen(
        [bai, "serve", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, "OPENBAI_HOME": str(home), "OPENBAI_DATABASE_URL": database},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a busy shared machine starts it slowly
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("bai serve did not start")


class socket_port:
    """A free port of 127.0.0.1 (``with socket_port() as port``)."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        return int(self._socket.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


def timed(call: Callable[[], Any], count: int) -> list[float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def get_ok(http: httpx.Client, url: str) -> None:
    http.get(url).raise_for_status()


def report(label: str, durations: list[float], floor: list[float] | None = None) -> None:
    p50, p99 = percentile(durations, 50), percentile(durations, 99)
    line = f"{label}: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"
    if floor is not None:
        line += f" ({p50 / percentile(floor, 50):.1f}x the floor's p50)"
    print(line, flush=True)


def bench(
    app: App, http: httpx.Client, names: list[str], gets: int, page_size: int, server: int
) -> None:
    exp = f"/subscriptions/{app.settings.subscription_id}/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/experiments/exp"
    pick = random.Random(1).choice
    for _ in range(20):  # warm up connections and caches
        http.get(f"{exp}/jobs/{pick(names)}?{API}").raise_for_status()
    healthz = timed(lambda: http.get("/healthz").raise_for_status(), gets)
    in_process = timed(lambda: jobs.get_job(app, "rg", "ws", "exp", pick(names)), gets)
    get_job = timed(lambda: http.get(f"{exp}/jobs/{pick(names)}?{API}").raise_for_status(), gets)
    report("GET /healthz (HTTP floor)", healthz)
    report("jobs.get_job in-process (database floor)", in_process)
    report(f"GET job, {len(names)} jobs in the experiment", get_job, healthz)

    pages: list[float] = []
    cpu = _cpu_seconds(server)
    for _ in range(3):  # three walks: a p50 of ~30 pages on a shared machine
        link: str | None = f"{exp}/jobs?{API}&maxresults={page_size}"
        listed, started = 0, time.perf_counter()
        while link:
            t0 = time.perf_counter()
            page = http.get(link).raise_for_status().json()
            pages.append(time.perf_counter() - t0)
            listed += len(page["value"])
            link = page.get("nextLink")
        total = time.perf_counter() - started
        assert listed == len(names), (listed, len(names))
    cpu = _cpu_seconds(server) - cpu
    report(f"list jobs, pages of {page_size}", pages)
    print(
        f"list all {listed} jobs through nextLink: {total:.2f} s in {len(pages) // 3} pages;"
        f" the server's CPU per page: {cpu / len(pages) * 1000:.1f} ms",
        flush=True,
    )
    cpu = _cpu_seconds(server)
    first = timed(lambda: http.get(f"{exp}/jobs?{API}&maxresults=100").raise_for_status(), 50)
    cpu = _cpu_seconds(server) - cpu
    report("list jobs, first page of 100", first)
    print(f"  the server's CPU per first page of 100: {cpu / 50 * 1000:.1f} ms", flush=True)

    # the web explorer's pages of the same experiment (a test once asserted < 1 s each)
    token = http.headers["Authorization"].removeprefix("Bearer ")
    with httpx.Client(base_url=http.base_url, timeout=60) as browser:
        login = browser.post("/ui/login", data={"token": token})
        assert login.status_code == 303, login.text  # to /ui/, with the session cookie
        page = "/ui/workspaces/rg/ws/experiments/exp"
        last = (len(names) + 49) // 50
        for query in ("", f"?page={last // 2}", f"?page={last}", "?state=succeeded&page=2"):
            url = page + query
            report(f"web page {url}", timed(partial(get_ok, browser, url), 20), healthz)


class _Connection:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams, with prebuilt requests and a
    minimal response reader (status, ``Content-Length`` or chunked): a load generator costs a
    fraction of httpx's CPU per request, and the server's work is the same."""

    def __init__(self, host: str, port: int, headers: bytes):
        self.host, self.port, self.headers = host, port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def request(self, method: str, target: str, body: bytes = b"") -> bytes:
        head = f"{method} {target} HTTP/1.1\r\n".encode() + self.headers
        if body:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        return head + b"\r\n" + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """The response's status and body; reconnects when the server closed the connection."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = None, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            while await self.reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers, up to the empty line
        else:
            body = await self.reader.readexactly(length or 0)
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _client(
    url: str,
    headers: dict[str, str],
    exp: str,
    names: list[str],
    seed: int,
    until: float,
    timings: dict[str, list[float]],
    errors: list[str],
    mix: tuple[float, float],
) -> None:
    pick = random.Random(seed)
    created = 0
    body = json.dumps({"properties": {**JOB["properties"], "cluster": {"id": "idle"}}}).encode()
    host, port = url.removeprefix("http://").rsplit(":", 1)
    fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
    connection = _Connection(host, int(port), fixed.encode())
    page = connection.request("GET", f"{exp}/jobs?{API}&maxresults=100")
    try:
        while time.monotonic() < until:
            roll = pick.random()
            if roll < mix[0]:
                kind = "GET job"
                request = connection.request("GET", f"{exp}/jobs/{pick.choice(names)}?{API}")
            elif roll < mix[0] + mix[1]:
                kind, request = "list page of 100", page
            else:
                created += 1
                kind = "create job"
                request = connection.request("PUT", f"{exp}/jobs/load-{seed}-{created}?{API}", body)
            started = time.perf_counter()
            try:
                status, answer = await connection.send(request)
                if status >= 400:
                    errors.append(f"{kind}: {status} {answer[:200]!r}")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(f"{kind}: {type(exc).__name__} {exc}")
                await connection.close()
            timings[kind].append(time.perf_counter() - started)
    finally:
        await connection.close()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children (the server's workers)."""
    import psutil

    total = 0.0
    try:
        process = psutil.Process(pid)
        for p in [process, *process.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
    except psutil.NoSuchProcess:
        pass
    return total


def bench_load(
    app: App,
    url: str,
    token: str,
    names: list[str],
    clients: int,
    seconds: float,
    server: int,
    mix: tuple[float, float] = (0.8, 0.1),
) -> None:
    """``clients`` concurrent clients for ``seconds``: throughput, latency per kind, errors,
    and the CPU the server and the clients spent per request (what the machine's load does
    not change much, unlike requests/s on a shared machine)."""
    exp = f"/subscriptions/{app.settings.subscription_id}/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/experiments/exp"
    headers = {"Authorization": f"Bearer {token}"}
    timings: dict[str, list[float]] = {"GET job": [], "list page of 100": [], "create job": []}
    errors: list[str] = []

    async def run() -> float:
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(
            *(
                _client(url, headers, exp, names, i, until, timings, errors, mix)
                for i in range(clients)
            )
        )
        return time.monotonic() - started

    load = os.getloadavg()[0]
    server_cpu, client_cpu = _cpu_seconds(server), time.process_time()
    import uvloop  # uvicorn's loop: the clients' own cost per request is lower on it

    elapsed = uvloop.run(run())
    server_cpu = _cpu_seconds(server) - server_cpu
    client_cpu = time.process_time() - client_cpu
    total = sum(len(t) for t in timings.values())
    rate = total / elapsed
    for kind, durations in timings.items():
        if durations:
            report(f"under load, {clients} clients: {kind} ({len(durations)})", durations)
    p99 = percentile(timings["GET job"], 99) * 1000 if timings["GET job"] else float("inf")
    verdict = "met" if rate >= 500 and p99 <= 100 and not errors else "NOT met"
    print(
        f"under load, {clients} clients for {elapsed:.1f} s: {total} requests, {rate:.0f}"
        f" requests/s, {len(errors)} errors; goal (>= 500 requests/s, p99 of GET job <= 100 ms,"
        f" 0 errors) {verdict}",
        flush=True,
    )
    print(
        f"  CPU per request: server {server_cpu / max(total, 1) * 1000:.2f} ms (all its"
        f" processes), clients {client_cpu / max(total, 1) * 1000:.2f} ms; load average"
        f" {load:.2f} before, {os.getloadavg()[0]:.2f} after",
        flush=True,
    )
    for error in errors[:5]:
        print(f"  error: {error}", flush=True)


def fresh_postgres(url: str) -> tuple[str, Callable[[], None]]:
    """A new database on the server of ``url``, and the call that drops it."""
    from sqlalchemy.engine import make_url

    from openbai.store.database import administer

    name = f"openbai_bench_{os.getpid()}"
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    administer(url, drop, f'CREATE DATABASE "{name}"')
    fresh = make_url(url).set(database=name).render_as_string(hide_password=False)
    return fresh, partial(administer, url, drop)


STREAMER = (
    "python3 -u -c 'import time\n"
    "for i in range({lines}):\n"
    "    print(repr(time.time()), flush=True); time.sleep(0.025)'"
)


def bench_stream(app: App, home: Path, url: str, token: str, lines: int) -> None:
    """Line printed by a job on the server's cluster -> line received through the server."""
    from bench.local import follow_directly
    from openbai.cli.remote import RemoteClient

    body = {"properties": {**JOB["properties"], "customToolkitSettings": {
        "commandLine": STREAMER.format(lines=lines)}}}  # fmt: skip
    client = RemoteClient(url, token)
    try:
        job = client.create_job("rg", "ws", "exp", "stream", body, cluster=None)
        segment = job["properties"]["jobOutputDirectoryPathSegment"]
        direct_path = (
            home / "storage" / "acct" / "file" / "logs" / segment / "stdouterr" / "stdout.txt"
        )
        direct: list[float] = []
        threading.Thread(target=follow_directly, args=(direct_path, direct), daemon=True).start()
        delays: list[float] = []
        buffer = b""
        for chunk in client.stream_job_file(
            "rg", "ws", "exp", "stream", "stdout.txt", directory_id="stdouterr", path="."
        ):
            now = time.time()
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            delays += [now - float(line) for line in complete if line]
    finally:
        client.close()
    lost = (
        "every line"
        if len(delays) == lines and buffer == b""
        else f"LOST {lines - len(delays)} lines"
    )
    print(
        f"stream line written -> received through the server: p50 {percentile(delays, 50) * 1000:.1f} ms, "
        f"p99 {percentile(delays, 99) * 1000:.1f} ms ({len(delays)} lines, {lost}); reading the file "
        f"directly: p50 {percentile(direct, 50) * 1000:.1f} ms; ratio p50 "
        f"{percentile(delays, 50) / max(percentile(direct, 50), 1e-6):.1f}x",
        flush=True,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench api")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=200, help="lines of the streaming job")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients of the load")
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--database", default="", help="a PostgreSQL server's URL (see above)")
    parser.add_argument("--load-only", action="store_true", help="only the load section")
    parser.add_argument("--workers", type=int, default=2, help="bai serve --workers")
    parser.add_argument(
        "--mix",
        default="80,10,10",
        help="percent of GET job, list page, create in the load (e.g. 100,0,0: the CPU of each)",
    )
    args = parser.parse_args(argv)
    database, drop = fresh_postgres(args.database) if args.database else ("", lambda: None)
    try:
        run(args, database)
    finally:
        drop()
    return 0


def run(args: argparse.Namespace, database: str) -> None:
    print(f"database: {database.split('://', 1)[0] if database else 'sqlite'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="openbai-bench-api-") as tmp:
        home = Path(tmp)
        app = App.open(Settings.load({"OPENBAI_HOME": str(home), "OPENBAI_DATABASE_URL": database}))
        started = time.perf_counter()
        names = populate(app, args.jobs)
        print(f"inserted {len(names)} jobs in {time.perf_counter() - started:.1f} s", flush=True)
        token = tokens.create_token(app, "bench")[1]
        process, url = start_server(home, database, args.workers)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            if not args.load_only:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                    bench(app, http, names, args.gets, args.page_size, process.pid)
            get, page, _ = (float(share) / 100 for share in args.mix.split(","))
            mix = (get, page)
            bench_load(app, url, token, names, args.clients, args.load_seconds, process.pid, mix)
            if not args.load_only:
                bench_stream(app, home, url, token, args.lines)
        finally:
            process.terminate()
            process.wait(30)
            app.close()
