"""Small types shared by every Batch AI resource: names, ids, variables, durations.

Names follow the 2018-05-01 swagger (``^[-\\w_]+$``, 1-64 characters; resource groups
``^[-\\w\\._]+$``, 1-90), restricted to ASCII: a name becomes a directory, a Slurm job name
and part of a URL, and non-ASCII word characters make all three fragile.

Durations (``constraints.maxWallClockTime``) arrive in three spellings in the wild: ISO-8601
from the SDK (``P7D``, and every form ISO allows: ``PT1,5H``, ``P0.5D``, ``P1Y``), .NET TimeSpan from the swagger default (``7.00:00:00``) and Python's
``str(timedelta)`` printed by the CLI (``7 days, 0:00:00``). All are accepted; the wire form
is always ISO-8601, which is what the SDK sends and expects back. A duration past the limit
(``P1Y``, ``PT99999999999999999999S``) is refused as too long, not as unreadable.

Several Batch AI enums were "modelAsString" and matched loosely; :func:`choice` accepts them
case-insensitively and stores the canonical spelling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    Strict,
    model_validator,
)

from openbai.errors import SpecError
from openbai.spec.base import FieldError, WireModel, secret_field

__all__ = [
    "Duration",
    "EnvironmentVariable",
    "EnvironmentVariableWithSecretValue",
    "KeyVaultSecretReference",
    "MAX_WALL_CLOCK_TIME",
    "NAME_PATTERN",
    "NonEmptyStr",
    "NullAsEmpty",
    "PathPrefix",
    "RESOURCE_GROUP_PATTERN",
    "RelativePath",
    "ResourceId",
    "StrictInt",
    "UserAccountSettings",
    "check_name",
    "check_resource_group",
    "check_unique_names",
    "choice",
    "format_duration",
    "parse_duration",
]

NAME_PATTERN = re.compile(r"^[-A-Za-z0-9_]+$")
"""Workspace, experiment, cluster, job and file server names (1-64 characters)."""

RESOURCE_GROUP_PATTERN = re.compile(r"^[-A-Za-z0-9._()]*[-A-Za-z0-9_()]$")
"""Resource group names as ARM takes them, also used for ``location`` (1-90 characters):
never ending in ``.``, so ``.`` and ``..`` cannot pass for a path segment."""

ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

MAX_WALL_CLOCK_TIME = timedelta(days=7)
"""Batch AI's default and ceiling for ``constraints.maxWallClockTime``."""

StrictInt = Annotated[int, Strict()]
"""An integer that must be a JSON number: ``"2"`` or ``true`` is a mistake, not a count."""

NonEmptyStr = Annotated[str, Field(min_length=1)]

NullAsEmpty = BeforeValidator(lambda value: [] if value is None else value)
"""For lists: ``null`` (as GET responses print absent lists) reads as ``[]``."""


def check_name(value: str, *, field: str) -> str:
    """Validate a workspace/experiment/cluster/job/file server name; return it unchanged."""
    return _check(value, field=field, pattern=NAME_PATTERN, max_length=64)


def check_resource_group(value: str, *, field: str) -> str:
    """Validate a resource group name; return it unchanged."""
    return _check(value, field=field, pattern=RESOURCE_GROUP_PATTERN, max_length=90)


def _check(value: str, *, field: str, pattern: re.Pattern[str], max_length: int) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{field} must be a non-empty name", target=field)
    if len(value) > max_length:
        raise SpecError(
            f"{field} must be at most {max_length} characters long, got {len(value)}",
            target=field,
        )
    if not pattern.fullmatch(value):
        allowed = "letters, digits, '-' and '_'"
        if pattern is RESOURCE_GROUP_PATTERN:
            allowed = "letters, digits, '-', '_', '(', ')' and '.' (not at the end)"
        raise SpecError(f"{field} {value!r} may contain only {allowed}", target=field)
    return value


def choice(*values: str) -> BeforeValidator:
    """Match a string against ``values`` ignoring case; yield the canonical spelling.

    Used as ``Annotated[Literal["low", "normal", "high"], choice("low", "normal", "high")]``:
    the ``Literal`` still rejects anything else with a message listing the valid values.
    """
    canonical = {value.lower(): value for value in values}

    def canonicalize(raw: Any) -> Any:
        if isinstance(raw, str):
            return canonical.get(raw.lower(), raw)
        return raw

    return BeforeValidator(canonicalize)


# -- durations -------------------------------------------------------------------------

_NUMBER = r"\d+(?:[.,]\d+)?"
_ISO = re.compile(
    rf"(?P<sign>[-+])?P(?:(?P<years>{_NUMBER})Y)?(?:(?P<months>{_NUMBER})M)?"
    rf"(?:(?P<weeks>{_NUMBER})W)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?"
)
_DOTNET = re.compile(
    r"(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})"
    r"(?::(?P<seconds>\d{1,2}(?:\.\d{1,7})?))?"
)
_PYTHON = re.compile(
    r"(?P<days>\d+) days?, (?P<hours>\d{1,2}):(?P<minutes>\d{2}):(?P<seconds>\d{2}(?:\.\d{1,6})?)"
)
_DURATION_HINT = "use ISO-8601 (P7D, PT1H30M) or d.hh:mm:ss (7.00:00:00, 1:30:00)"
# ISO-8601 leaves a year's and a month's length to the calendar; these are their shortest
# lengths that matter here, and either is longer than any wall-clock limit a job may have.
_SECONDS = {
    "years": Decimal(365 * 86400),
    "months": Decimal(28 * 86400),
    "weeks": Decimal(7 * 86400),
    "days": Decimal(86400),
    "hours": Decimal(3600),
    "minutes": Decimal(60),
    "seconds": Decimal(1),
}
_LONGEST = Decimal(int(timedelta.max.total_seconds()))


class DurationTooLong(ValueError):
    """A duration longer than any ``timedelta`` (``PT99999999999999999999S``)."""


def parse_duration(value: str) -> timedelta:
    """Parse ISO-8601 (``P1DT2H``, ``PT1,5H``, ``P1Y``), ``1.02:00:00``, ``1:30:00`` or
    ``1 day, 2:00:00``.

    Raises ``ValueError`` (pydantic reports it against the field) for anything else, and
    :class:`DurationTooLong` for a duration too long to compute with.
    """
    text = value.strip()
    match = _ISO.fullmatch(text.upper())
    if match and not re.fullmatch(r"[-+]?PT?", text.upper()) and not text.upper().endswith("T"):
        parts = {k: v for k, v in match.groupdict().items() if v is not None and k != "sign"}
        return _timedelta(value, parts, negative=match.group("sign") == "-")
    for pattern in (_DOTNET, _PYTHON):
        match = pattern.fullmatch(text)
        if match:
            parts = {k: v for k, v in match.groupdict().items() if v is not None}
            if (
                int(parts["hours"]) >= 24
                or int(parts["minutes"]) >= 60
                or float(parts.get("seconds", 0)) >= 60
            ):
                raise ValueError(f"{value!r} has hours, minutes or seconds out of range")
            return _timedelta(value, parts)
    raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")


def _timedelta(value: str, parts: dict[str, str], *, negative: bool = False) -> timedelta:
    """Sum the parts exactly (``Decimal``): a float or ``timedelta`` overflows on huge ones."""
    seconds = sum(
        (Decimal(number.replace(",", ".")) * _SECONDS[unit] for unit, number in parts.items()),
        Decimal(0),
    )
    if seconds > _LONGEST:
        raise DurationTooLong(f"{value!r} is too long to be a duration")
    micros = int(seconds * 1_000_000)
    return timedelta(microseconds=-micros if negative else micros)


def format_duration(value: timedelta) -> str:
    """ISO-8601, the wire form: ``P7D``, ``PT1H30M``, ``P1DT2H``, ``PT5S``, ``PT0.5S``."""
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, micros = divmod(abs(micros), 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = f"{sign}P{days}D" if days else f"{sign}P"
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if seconds or micros:
        clock += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    if clock:
        text += "T" + clock
    return text if text not in ("P", "-P") else "PT0S"


def _to_timedelta(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationTooLong:
            raise ValueError(_TOO_LONG) from None
    if isinstance(value, timedelta):
        return value
    raise ValueError(f"must be a duration string; {_DURATION_HINT}")


_TOO_LONG = f"must be at most 7 days ({format_duration(MAX_WALL_CLOCK_TIME)})"


def _within_limits(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    if value > MAX_WALL_CLOCK_TIME:
        raise ValueError(_TOO_LONG)
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    AfterValidator(_within_limits),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A wall-clock limit: more than zero, at most 7 days, ISO-8601 on the wire."""


# -- references and variables ----------------------------------------------------------


class ResourceId(WireModel):
    """An ARM reference ``{"id": "/subscriptions/.../clusters/c1"}``; resolving it is not ours."""

    id: NonEmptyStr


class KeyVaultSecretReference(WireModel):
    """A secret kept in Azure Key Vault; we store the reference, never a fetched value."""

    source_vault: ResourceId
    secret_url: NonEmptyStr


def _env_name(value: str) -> str:
    if not ENV_NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid environment variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


class EnvironmentVariable(WireModel):
    """A plain ``name=value`` given to the job (and its preparation task)."""

    name: EnvName
    value: str


class EnvironmentVariableWithSecretValue(WireModel):
    """A secret variable: a value (never shown back) or a Key Vault reference, not both."""

    name: EnvName
    value: str | None = secret_field()
    value_secret_reference: KeyVaultSecretReference | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvironmentVariableWithSecretValue:
        if (self.value is None) == (self.value_secret_reference is None):
            raise FieldError(
                f"secret {self.name!r} needs exactly one of value or valueSecretReference"
            )
        return self


class UserAccountSettings(WireModel):
    """The admin account of cluster nodes / file servers (optional for us: no VMs to log in)."""

    admin_user_name: NonEmptyStr
    admin_user_ssh_public_key: str | None = None
    admin_user_password: str | None = secret_field()


def check_unique_names(
    groups: Iterable[tuple[str, Iterable[Any]]],
    *,
    what: str,
    key: Callable[[Any], str] = lambda item: str(item.name),
    attr: str = "name",
) -> None:
    """Raise :class:`FieldError` at the first item whose key repeats an earlier one.

    ``groups`` is ``[("environmentVariables", [...]), ("secrets", [...])]``: uniqueness is
    checked across all groups, and the error points at ``secrets[0].name``.
    """
    seen: dict[str, str] = {}
    for group, items in groups:
        for index, item in enumerate(items):
            value = key(item)
            if value in seen:
                raise FieldError(
                    f"duplicate {what} {value!r} (already used in {seen[value]})",
                    group,
                    index,
                    attr,
                )
            seen[value] = f"{group}[{index}]"


def _relative_path(value: str) -> str:
    if not value or not value.strip():
        raise ValueError("must not be empty")
    if "\\" in value:
        raise ValueError(f"{value!r} must use '/' and no backslash")
    if value.startswith("/"):
        raise ValueError(f"{value!r} must be a relative path, not an absolute one")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{value!r} must not contain '..'")
    if not parts:
        raise ValueError(f"{value!r} must name a directory")
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ValueError(f"{value!r} must not contain control characters (a newline, a tab)")
    if any(len(part.encode()) > 255 for part in parts):
        raise ValueError(f"{value!r} has a name longer than 255 bytes, which no file system keeps")
    return value


RelativePath = Annotated[str, AfterValidator(_relative_path)]
"""A path below some root: non-empty, no leading '/', no '..', no backslash, no control
character, no name longer than a file system keeps."""


def _path_prefix(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError(
            f"{value!r} must not contain a '..' segment: the path must stay inside the volume"
            " it names"
        )
    return value


PathPrefix = Annotated[str, Field(min_length=1), AfterValidator(_path_prefix)]
"""A ``*PathPrefix`` (``$AZ_BATCHAI_JOB_MOUNT_ROOT/logs``): where a job's files go. Which
volume it is on is checked when the job is created, against the volumes mounted for it."""
