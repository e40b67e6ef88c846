"""Executors by name, imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from openbai.errors import ExecutorError
from openbai.executors.base import Executor

#: executor name -> "module:Class" (keep sorted)
EXECUTORS: Mapping[str, str] = {
    "local": "openbai.executors.local:LocalExecutor",
    "slurm": "openbai.executors.slurm:SlurmExecutor",
}


def executor_class(name: str) -> type[Executor]:
    target = EXECUTORS.get(name)
    if target is None:
        raise ExecutorError(f"no executor named {name!r} (known: {', '.join(EXECUTORS)})")
    module_name, _, class_name = target.partition(":")
    cls: type[Executor] = getattr(importlib.import_module(module_name), class_name)
    return cls


def make_executor(name: str, **options: Any) -> Executor:
    return executor_class(name)(**options)
