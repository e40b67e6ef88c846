"""The composition root of ``bai serve``: one opened installation, the REST API, the web page
under ``/ui`` and the dispatcher on a thread, put together here so that none of them imports
another."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from typing import Any

from fastapi import FastAPI

from openbai.api.app import create_api
from openbai.api.urls import check_public_url
from openbai.installation import App, poke_dispatcher
from openbai.scheduling.in_server import DispatcherThread
from openbai.services.deletions import BackgroundDeletes
from openbai.settings import Settings
from openbai.web.app import create_web_app

#: seconds open responses get to finish on SIGINT/SIGTERM; streams that follow a running job
#: (the API's streamOutputFile, the web page's live views) are then cut, so they cannot keep
#: the server from stopping (clients resume them from their offset)
SHUTDOWN_GRACE = 5


def create_app(
    settings: Settings, *, service: App | None = None, public_url: str | None = None
) -> FastAPI:
    """The API with the web page mounted at ``/ui``, over ``settings``' installation (or an
    already opened ``service``). The dispatcher is not started: see :func:`serve`."""
    checked = check_public_url(public_url) if public_url else None
    app = service or App.open(settings)
    background = BackgroundDeletes(app)
    api = create_api(app, background, public_url=checked)
    api.mount("/ui", create_web_app(app, background, public_url=checked))
    return api


def worker_app() -> FastAPI:
    """The app of one of several worker processes (``bai serve --workers N``): its own
    installation over the same store, whose changes wake the dispatcher that runs in the
    serving process (a datagram, as the CLI sends)."""
    settings = Settings.load()
    service = App.open(settings)

    def wake() -> None:
        poke_dispatcher(settings)

    service.on_change = wake
    app = create_app(settings, service=service, public_url=os.environ.get(PUBLIC_URL) or None)
    freeze_what_lives_on()
    sys.setswitchinterval(SWITCH_INTERVAL)
    return app


#: how long a thread holds the interpreter before another may run (Python's default: 5 ms).
#: The event loop answers cheap requests (a GET of a job, ~1 ms) itself while worker threads
#: run the long ones (a create, ~15 ms), so a GET waits for the slices of running creates:
#: under `python -m bench api`'s load, GET job's p99 was 98-108 ms at 5 ms, 78-94 ms at 1 ms
SWITCH_INTERVAL = 0.001


def freeze_what_lives_on() -> None:
    """Keep the objects made so far (imported modules, the app, its routes and models: what
    lives as long as the server) out of the cyclic garbage collector's passes.

    A full pass walked them all, hundreds of thousands, whenever requests had made enough
    objects: a page of 1,000 jobs cost ~60 ms of CPU with them, ~25 ms without."""
    gc.collect()
    gc.freeze()


#: how the serving process tells its workers the ``--public-url``
PUBLIC_URL = "OPENBAI_PUBLIC_URL"


def serve(
    settings: Settings,
    listener: socket.socket,
    *,
    log_level: str,
    public_url: str | None,
    forwarded_allow_ips: str | None = None,
    workers: int = 1,
    on_ready: Any = None,
) -> None:
    """Serve on ``listener`` with the dispatcher running, until SIGINT or SIGTERM.

    With ``workers`` > 1, requests are answered by that many processes sharing the
    listener, each with its own connections to the store (the GIL lets one process use one
    core); the dispatcher stays on a thread of this one.

    ``X-Forwarded-For``/``-Proto`` are believed only from ``forwarded_allow_ips`` (a
    proxy's addresses): anyone else could claim any client address or https with them."""
    import uvicorn

    service = App.open(settings)
    dispatcher = DispatcherThread(service)
    options: dict[str, Any] = {
        "log_level": log_level,
        "access_log": False,
        "proxy_headers": bool(forwarded_allow_ips),
        "forwarded_allow_ips": forwarded_allow_ips or "",
        "timeout_graceful_shutdown": SHUTDOWN_GRACE,
    }
    # uvicorn stops on SIGINT/SIGTERM and then raises the signal again: with these handlers
    # that second raise is a no-op, so the dispatcher and the database are closed below
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    dispatcher.start()
    try:
        if workers > 1:
            from uvicorn.supervisors import Multiprocess

            os.environ[PUBLIC_URL] = public_url or ""
            config = uvicorn.Config(
                "openbai.server:worker_app", factory=True, workers=workers, **options
            )
            supervisor = Multiprocess(config, sockets=[listener])
            if on_ready is not None:
                on_ready()
            supervisor.run()  # returns on SIGINT/SIGTERM, once the workers have stopped
        else:
            app = create_app(settings, service=service, public_url=public_url)
            server = uvicorn.Server(uvicorn.Config(app, **options))
            freeze_what_lives_on()
            if on_ready is not None:
                on_ready()
            server.run(sockets=[listener])  # returns on SIGINT/SIGTERM, after open requests end
    finally:
        dispatcher.close()
        service.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: Any) -> None:
    """Keep the process alive after uvicorn has handled the signal."""
