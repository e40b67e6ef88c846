"""What a job keeps of the environment its runner was started with.

A runner has the environment of whoever started the dispatcher: a user's shell (``bai`` starts
one when none runs) with its tokens and cloud keys, a service's unit, a Slurm job's. A job on
Batch AI started from a fresh login on its VM, not from its client's shell, so a job keeps only
what says where programs and libraries are and how to talk to the user (``PATH``, the loader's
path, pyenv's, the locale, the time zone, the terminal, the login's names), the GPUs a
scheduler gave it, the scheduler variables its executor keeps (a Slurm job's ``SLURM_*``), and
what the installation names in ``OPENBAI_JOB_ENV`` (``NAME,PREFIX*``: ``CONDA_*,HF_HOME``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: where the installation names more variables its jobs keep (names, or prefixes ending in *)
EXTRA_ENV = "OPENBAI_JOB_ENV"

_KEPT = frozenset(
    {
        "PATH",
        "LD_LIBRARY_PATH",
        "PYENV_ROOT",
        "PYENV_VERSION",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "CUDA_VISIBLE_DEVICES",
    }
)
_KEPT_PREFIXES = ("LC_",)


def inherited_env(environ: Mapping[str, str], keep: Iterable[str] = ()) -> dict[str, str]:
    """The variables of ``environ`` a job keeps; ``keep``: prefixes an executor adds."""
    names = set(_KEPT)
    prefixes = [*_KEPT_PREFIXES, *keep]
    for given in environ.get(EXTRA_ENV, "").split(","):
        given = given.strip()
        if given.endswith("*"):
            if given[:-1]:
                prefixes.append(given[:-1])
        elif given:
            names.add(given)
    kept = tuple(prefixes)
    return {k: v for k, v in environ.items() if k in names or k.startswith(kept)}
