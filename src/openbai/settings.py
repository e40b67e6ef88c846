"""Installation settings, read once at the edges (CLI entry, server start) and passed inward.

Everything lives under one data directory, ``$OPENBAI_HOME`` (default ``~/.openbai``)::

    openbai.db          state (SQLite, WAL)
    config.json         this installation's subscription id and defaults
    storage/<account>/  embedded storage accounts (blob containers and file shares)
    nodes/              node roots of local clusters (mount roots, job temp dirs)
    runs/<job uuid>/    what the executor and the node runners exchange (plans, results)
"""

from __future__ import annotations

import ipaddress
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from openbai.errors import SpecError
from openbai.files import create_once, write_private

DEFAULT_RESOURCE_GROUP = "default"
DEFAULT_LOCATION = "local"


@dataclass(frozen=True)
class Settings:
    home: Path
    subscription_id: str
    resource_group: str = DEFAULT_RESOURCE_GROUP
    location: str = DEFAULT_LOCATION
    database_url: str = ""
    #: container runtime to run ``containerSettings`` images with (podman, docker), if any
    container_runtime: str | None = None
    #: the GPUs openbai may hand out (``OPENBAI_GPUS=0,1,2,3``); None: what NVML finds
    gpus: tuple[int, ...] | None = None
    #: how long an auto-scale cluster keeps nodes no job needs before it shrinks towards its
    #: minimum (Batch AI took minutes)
    autoscale_idle_seconds: float = 300.0
    #: the address file servers' NFS servers listen on and nodes mount them at
    #: (``OPENBAI_FILE_SERVER_ADDRESS``): this machine's address that every node reaches (on a
    #: Slurm installation, the head node's address on the compute nodes' network)
    file_server_address: str = "127.0.0.1"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def storage_root(self) -> Path:
        return self.home / "storage"

    @property
    def nodes_root(self) -> Path:
        return self.home / "nodes"

    @property
    def runs_root(self) -> Path:
        return self.home / "runs"

    @property
    def daemon_socket(self) -> Path:
        return self.home / "dispatcher.sock"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'openbai.db'}"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``OPENBAI_*`` variables and ``config.json``; create the data dir on first use."""
        env = os.environ if environ is None else environ
        home = Path(env.get("OPENBAI_HOME") or Path.home() / ".openbai").expanduser().absolute()
        home.mkdir(parents=True, exist_ok=True)
        config = _load_or_init_config(home / "config.json")
        return cls(
            home=home,
            subscription_id=config["subscriptionId"],
            resource_group=env.get("OPENBAI_RESOURCE_GROUP")
            or config.get("resourceGroup", DEFAULT_RESOURCE_GROUP),
            location=config.get("location", DEFAULT_LOCATION),
            database_url=_configured_database(env, config),
            container_runtime=env.get("OPENBAI_CONTAINER_RUNTIME")
            or config.get("containerRuntime")
            or None,
            autoscale_idle_seconds=float(env.get("OPENBAI_AUTOSCALE_IDLE_SECONDS") or 300.0),
            gpus=_configured_gpus(env, config),
            file_server_address=_configured_address(env, config),
        )


def configure_database(home: Path, url: str | None, field: str) -> None:
    """Keep ``url`` (checked) as the installation's database in ``config.json``; None or ""
    goes back to the SQLite file. The file stays private: the URL may hold a password."""
    path = home / "config.json"
    config: dict[str, str] = json.loads(path.read_text())
    if url:
        config["databaseUrl"] = database_url(url, field)
    else:
        config.pop("databaseUrl", None)
    write_private(path, json.dumps(config, indent=2) + "\n")


def _configured_database(env: Mapping[str, str], config: Mapping[str, str]) -> str:
    if env.get("OPENBAI_DATABASE_URL"):
        return database_url(env["OPENBAI_DATABASE_URL"], "OPENBAI_DATABASE_URL")
    if config.get("databaseUrl"):
        return database_url(str(config["databaseUrl"]), "config.json databaseUrl")
    return ""


#: URL schemes of the databases openbai keeps its state in, and the driver each one uses
DATABASE_SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def database_url(value: str, field: str) -> str:
    """A database URL as SQLAlchemy takes it: ``sqlite:///PATH`` or ``postgresql://...``
    (``postgres://`` too), whose driver is psycopg whatever the URL says."""
    scheme, sep, rest = value.strip().partition("://")
    driver = DATABASE_SCHEMES.get(scheme.lower())
    if not sep or driver is None or not rest:
        raise SpecError(
            f"{field}: expected a database URL such as postgresql://USER:PASSWORD@HOST/DB or"
            f" sqlite:///PATH, not {scheme + sep or 'that'}…",
            target=field,
        )
    return f"{driver}://{rest}"


def _configured_address(env: Mapping[str, str], config: Mapping[str, str]) -> str:
    field, value = "OPENBAI_FILE_SERVER_ADDRESS", env.get("OPENBAI_FILE_SERVER_ADDRESS")
    if not value:
        field, value = "config.json fileServerAddress", config.get("fileServerAddress")
    if not value:
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise SpecError(
            f"{field}: {value!r} is not an IP address of this machine (such as 10.0.0.4)",
            target=field,
        ) from None


def _configured_gpus(env: Mapping[str, str], config: Mapping[str, str]) -> tuple[int, ...] | None:
    if "OPENBAI_GPUS" in env:
        return parse_gpus(env["OPENBAI_GPUS"], "OPENBAI_GPUS")
    if config.get("gpus") is not None:
        return parse_gpus(str(config["gpus"]), "config.json gpus")
    return None


def parse_gpus(value: str, field: str) -> tuple[int, ...]:
    """``0,1,2,3`` as GPU indices; empty (or ``none``) is no GPU at all."""
    text = value.strip()
    if text.lower() in ("", "none"):
        return ()
    try:
        indices = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SpecError(
            f"{field}: {value!r} is not a list of GPU indices such as 0,1,2,3", target=field
        ) from None
    if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
        raise SpecError(
            f"{field}: {value!r} must name each GPU once, by its index (0 or more)", target=field
        )
    return indices


def _load_or_init_config(path: Path) -> dict[str, str]:
    fresh = {"subscriptionId": str(uuid.uuid4()), "resourceGroup": DEFAULT_RESOURCE_GROUP}
    won: dict[str, str] = json.loads(
        create_once(path, lambda: (json.dumps(fresh, indent=2) + "\n").encode())
    )
    return won
