"""A real nginx (Debian's) in front of a real ``bai serve``, with TLS ended at nginx: a
self-signed certificate for ``localhost`` made here, nginx on a free port of 127.0.0.1.

Two ways of putting a server behind it, as admins do:

* ``plain``: nginx's defaults (``proxy_pass`` alone: ``Host`` becomes the upstream's
  address, no ``X-Forwarded-*``), under a prefix the proxy strips (``/batchai/``), and
  ``bai serve --public-url https://localhost:PORT/batchai``;
* ``forwarded``: ``Host``, ``X-Forwarded-For`` and ``X-Forwarded-Proto`` passed on and
  ``bai serve --forwarded-allow-ips 127.0.0.1``, no public URL.
"""

from __future__ import annotations

import datetime
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api.support import Server, free_port, start_server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PREFIX = "/batchai"


@dataclass
class Proxied:
    """The server behind nginx: ``url`` is what users type (with any prefix)."""

    url: str
    origin: str
    server: Server
    cafile: Path

    def client(self, **kwargs: object) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.cafile))
        return httpx.Client(verify=context, timeout=30, **kwargs)  # type: ignore[arg-type]


def require_nginx() -> None:
    if not Path(NGINX).exists():
        message = f"{NGINX} is missing: scripts/system-packages.sh installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` (and 127.0.0.1) and its key."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _config(directory: Path, port: int, upstream: int, mode: str) -> str:
    cert, key = self_signed(directory)
    if mode == "plain":
        location = f"location {PREFIX}/ {{ proxy_pass http://127.0.0.1:{upstream}/; }}"
    else:
        location = (
            "location / {\n"
            f"      proxy_pass http://127.0.0.1:{upstream};\n"
            "      proxy_set_header Host $http_host;\n"
            "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "      proxy_set_header X-Forwarded-Proto $scheme;\n"
            "    }"
        )
    user = "user root;" if os.geteuid() == 0 else ""  # workers must reach the temp folders
    temp = directory / "temp"
    return f"""
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log {directory}/access.log;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name localhost;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    {location}
  }}
}}
"""


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    directory: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_nginx(directory: Path, port: int, upstream: int, mode: str) -> Nginx:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "temp").mkdir(exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(_config(directory, port, upstream, mode))
    process = subprocess.Popen(
        [NGINX, "-p", str(directory), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with httpx.Client(verify=False, timeout=1) as client:  # noqa: S501 - only "up?"
                client.get(f"https://127.0.0.1:{port}/")
            break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log = directory / "error.log"
            raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else ''}")
        time.sleep(0.05)
    return Nginx(process, directory)


def behind_nginx(home: Path, env: dict[str, str], work: Path, mode: str) -> Iterator[Proxied]:
    """A ``bai serve`` over ``home`` behind nginx in ``mode``, until the generator closes."""
    require_nginx()
    port = free_port()
    origin = f"https://localhost:{port}"
    extra = (
        {"OPENBAI_PUBLIC_URL": origin + PREFIX}
        if mode == "plain"
        else {"OPENBAI_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    )
    server = start_server(home, {**env, **extra})
    try:
        nginx = start_nginx(work, port, int(server.url.rsplit(":", 1)[1]), mode)
        try:
            url = origin + PREFIX if mode == "plain" else origin
            yield Proxied(url, origin, server, work / "cert.pem")
        finally:
            nginx.stop()
    finally:
        server.stop()
