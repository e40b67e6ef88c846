"""A PyTorch CUDA job through ``bai job create`` on a local STANDARD_NC6 cluster (one GPU).

For a machine with an NVIDIA GPU and PyTorch (CUDA build) installed beside openbai:
``python -m bench gpu_job``. The job trains a small model for a few steps on generated data
and prints what it got: ``AZ_BATCHAI_NUM_GPUS``, ``CUDA_VISIBLE_DEVICES`` (0: the sandbox
shows the node's GPU alone), the GPU device files and driver's boards it finds (its own only),
``nvidia-smi -L``, ``torch.cuda.is_available()``, the device's name. The script prints the
job's ``stdout.txt`` and exits with the job's exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TRAIN = """
import os, shutil, subprocess, torch
print("AZ_BATCHAI_NUM_GPUS", os.environ["AZ_BATCHAI_NUM_GPUS"])
print("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
# what the sandbox shows of the machine's GPUs: the node's device files and boards alone
print("device files", sorted(n for n in os.listdir("/dev") if n.startswith("nvidia")))
boards = "/proc/driver/nvidia/gpus"
print("driver's boards", sorted(os.listdir(boards)) if os.path.isdir(boards) else None)
if shutil.which("nvidia-smi"):
    smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    print("nvidia-smi -L:", smi.stdout.strip(), smi.stderr.strip())
print("cuda available", torch.cuda.is_available())
device = torch.device("cuda")
print("device", torch.cuda.get_device_name(0))
torch.manual_seed(0)
x = torch.randn(4096, 32, device=device)
y = (x.sum(dim=1, keepdim=True) > 0).float()
model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(1, 201):
    opt.zero_grad()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    opt.step()
    if step % 50 == 0:
        print(f"metric: loss={loss.item():.4f} step={step}")
"""


def main(argv: list[str] | None = None) -> int:
    bai = [sys.executable, "-m", "openbai.cli.main"]
    with tempfile.TemporaryDirectory(prefix="openbai-gpu-") as tmp:
        env = {**os.environ, "OPENBAI_HOME": str(Path(tmp) / "home"), "BAI_SERVER": ""}

        def run(*args: str) -> str:
            done = subprocess.run([*bai, *args], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"bai {' '.join(args)}: {done.stderr}")
            return done.stdout

        scripts = Path(tmp) / "scripts"
        scripts.mkdir()
        (scripts / "train.py").write_text(TRAIN)
        run("storage", "account", "create", "-n", "acct", "-o", "none")
        run("storage", "share", "create", "--account", "acct", "-n", "logs", "-o", "none")
        run("storage", "file", "upload-batch", "--account", "acct", "-d", "logs",
            "-s", str(scripts), "-o", "none")  # fmt: skip
        run("workspace", "create", "-n", "ws", "-o", "none")
        run("experiment", "create", "-w", "ws", "-n", "exp", "-o", "none")
        run("cluster", "create", "-w", "ws", "-n", "nc6", "-s", "STANDARD_NC6", "--nodes", "1")
        job = {
            "properties": {
                "nodeCount": 1,
                "customToolkitSettings": {
                    "commandLine": f"{sys.executable} $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/train.py"
                },
                "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
                "mountVolumes": {
                    "azureFileShares": [
                        {
                            "azureFileUrl": "https://acct.file.core.windows.net/logs",
                            "relativeMountPath": "logs",
                        }
                    ]
                },
            }
        }
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(job))
        run("job", "create", "-w", "ws", "-e", "exp", "-c", "nc6", "-n", "torch", "-f", str(path))
        waited = subprocess.run(
            [*bai, "job", "wait", "-w", "ws", "-e", "exp", "-n", "torch"], env=env
        )
        shown = json.loads(run("job", "show", "-w", "ws", "-e", "exp", "-n", "torch", "-o", "json"))
        segment = shown["jobOutputDirectoryPathSegment"]
        folder = Path(env["OPENBAI_HOME"]) / "storage/acct/file/logs" / segment / "stdouterr"
        for name in ("stdout.txt", "stderr.txt"):
            if (folder / name).exists():
                print(f"--- {name}\n{(folder / name).read_text()}")
        return waited.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
