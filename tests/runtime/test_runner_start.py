"""A node runner is a fresh Python for every job on Slurm, and its imports are most of its start:
what it loads while running a job on an embedded volume stays lean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plans import job_plan

from openbai.plan.job_plan import MountSpec

#: each costs a runner start-up time it does not need: ``dataclasses`` loads ``inspect``
#: (``ast``, ``dis``, ``tokenize``) and generated a class's methods at import: a third of a
#: runner's imports (~30 ms of CPU); ``logging`` is the mount daemon's (~4 ms); the rest
#: are the server's
NOT_IN_A_RUNNER = {"dataclasses", "inspect", "ast", "logging", "sqlalchemy", "pydantic", "httpx"}

_RUN_AND_LIST_MODULES = """
import json, sys
from openbai.runtime.runner import main
code = main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def test_a_runner_runs_a_job_on_an_embedded_volume_without_loading_what_it_does_not_use(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    (storage / "acct" / "file" / "logs").mkdir(parents=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    job_plan(
        "echo hello",
        job_name="lean",
        output_segment="sub/rg/workspaces/ws/experiments/exp/jobs/lean/u",
        job_mounts=[
            MountSpec("logs", "local", "acct", "file", "logs", options={"root": str(storage)})
        ],
    ).write(run_dir / "plan.json")

    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES, "--run-dir", str(run_dir), "--node", "0"]
        + ["--node-root", str(tmp_path / "node")],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads((run_dir / "job.result.json").read_text())["exit_code"] == 0
    stdout = storage / "acct/file/logs/sub/rg/workspaces/ws/experiments/exp/jobs/lean/u"
    assert (stdout / "stdouterr/stdout.txt").read_text() == "hello\n"
    loaded = {name.partition(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}
    assert "openbai" in loaded and "subprocess" in loaded  # the list is the runner's
    assert loaded & NOT_IN_A_RUNNER == set()
