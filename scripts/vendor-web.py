#!/usr/bin/env python3
"""The web explorer's third-party files (htmx, uPlot), vendored from their npm packages.

    scripts/vendor-web.py check    every file listed in VENDOR.json is there with its sha256
    scripts/vendor-web.py fetch    npm-pack each package at its pinned version, check the
                                   tarball's integrity, copy the listed files, record hashes

The files are committed, so neither a build nor the server fetches anything: to upgrade,
change a version in src/openbai/web/static/vendor/VENDOR.json, run ``fetch`` (it prints the
new integrity to put in the manifest when the version changed) and commit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "src/openbai/web/static/vendor"
MANIFEST = VENDOR / "VENDOR.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(manifest: dict) -> int:
    bad = 0
    for package in manifest["packages"]:
        for name, entry in package["files"].items():
            path = VENDOR / name
            if not path.is_file() or sha256(path) != entry["sha256"]:
                print(f"vendor-web: {name} ({package['name']}@{package['version']}) differs")
                bad += 1
    return 1 if bad else 0


def _integrity(tarball: Path) -> str:
    digest = hashlib.sha512(tarball.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def fetch(manifest: dict) -> int:
    for package in manifest["packages"]:
        spec = f"{package['name']}@{package['version']}"
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                ["npm", "pack", "--silent", "--pack-destination", tmp, spec],
                check=True,
                capture_output=True,
                text=True,
            )
            tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
            integrity = _integrity(tarball)
            if integrity != package["integrity"]:
                print(f"vendor-web: {spec} has integrity {integrity}; update the manifest")
                package["integrity"] = integrity
            with tarfile.open(tarball) as archive:
                archive.extractall(tmp, filter="data")
            for name, entry in package["files"].items():
                shutil.copyfile(Path(tmp) / "package" / entry["from"], VENDOR / name)
                entry["sha256"] = sha256(VENDOR / name)
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return check(manifest)


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    manifest = json.loads(MANIFEST.read_text())
    if command == "check":
        return check(manifest)
    if command == "fetch":
        return fetch(manifest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
