"""The base of every Batch AI wire model, and the one door user JSON comes in through.

Batch AI's documents are camelCase JSON (``{"properties": {"nodeCount": 2}}``); our models
are snake_case Python. :class:`WireModel` bridges the two with an alias generator, and, like
ARM's msrest deserializer, ignores keys it does not know (``$schema``, ``comment``,
``location``, legacy keys) so that every real-world job.json keeps working.

User input must fail with an error that names the exact field, because the person who wrote
the file has to find it. :func:`parse` turns pydantic's ``ValidationError`` into a
:class:`~openbai.errors.SpecError` whose ``target`` is a path such as
``properties.mountVolumes.azureFileShares[0].relativeMountPath`` and whose message says what
is wrong in plain words. Validators that look at several fields at once raise
:class:`FieldError`, a ``ValueError`` that carries the location *below* the model that raised
it, so cross-field errors point at the offending item too.

Secrets: a field declared with :func:`secret_field` is hidden from ``repr()``/``str()`` and
from :meth:`WireModel.to_public_wire` (what GET responses print), but kept by
:meth:`WireModel.to_wire` (what the store persists).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from openbai.errors import SpecError
from openbai.spec import documents

__all__ = [
    "FieldError",
    "WireModel",
    "format_location",
    "load_json_file",
    "parse",
    "secret_field",
    "unknown_keys",
]

M = TypeVar("M", bound=BaseModel)

Location = Sequence[str | int]


class FieldError(ValueError):
    """A validation failure located below the model whose validator raised it.

    ``FieldError("duplicate id 'MODEL'", "outputDirectories", 1, "id")`` raised by the job
    model's validator becomes the target ``properties.outputDirectories[1].id``. It is a
    ``ValueError`` so that pydantic collects it like any other field error.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.loc: tuple[str | int, ...] = loc

    def __str__(self) -> str:
        return self.message


def secret_field(**kwargs: Any) -> Any:
    """A field whose value must never be shown: no ``repr``, dropped by ``to_public_wire``.

    Secrets (account keys, passwords, secret environment variable values) are stored so that
    a job can use them, but Batch AI "never reported them back"; we do the same.
    """
    kwargs.setdefault("default", None)
    return Field(repr=False, **kwargs)


class WireModel(BaseModel):
    """A Batch AI resource fragment: snake_case in Python, camelCase on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        validate_assignment=False,
    )

    legacy_keys: ClassVar[frozenset[str]] = frozenset()
    """Keys Batch AI accepted here (older API versions, read-only fields of a GET that a user
    feeds back) which this model ignores or maps: no warning is given for them."""

    def to_wire(self) -> dict[str, Any]:
        """The full JSON document, secrets included: this is what gets stored."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def to_public_wire(self) -> dict[str, Any]:
        """The JSON document without secret values: this is what GET and ``show`` return.

        Names and key-vault references stay, so a user can see *which* secret is used.
        """
        data = self.to_wire()
        _drop_secrets(self, data)
        return data


def _drop_secrets(model: BaseModel, data: dict[str, Any]) -> None:
    """Remove fields declared with :func:`secret_field` from ``data``, recursively."""
    for name, info in type(model).model_fields.items():
        key = info.serialization_alias or info.alias or name
        if key not in data:
            continue
        if info.repr is False:
            del data[key]
            continue
        _drop_secrets_in(getattr(model, name), data[key])


def _drop_secrets_in(value: Any, data: Any) -> None:
    if isinstance(value, BaseModel) and isinstance(data, dict):
        _drop_secrets(value, data)
    elif isinstance(value, list | tuple) and isinstance(data, list):
        for item, item_data in zip(value, data, strict=False):
            _drop_secrets_in(item, item_data)
    elif isinstance(value, dict) and isinstance(data, dict):
        for key, item in value.items():
            if key in data:
                _drop_secrets_in(item, data[key])


def format_location(loc: Location, *, root: str = "") -> str:
    """``("properties", "mountVolumes", "azureFileShares", 0)`` → ``properties....[0]``."""
    text = root
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            text = f"{text}.{part}" if text else part
    return text


#: the validation context of a spec read back from the store, whose secret fields were left
#: out (``to_public_wire``): a check that one of a secret and its reference is given skips
STORED = {"stored": True}


def parse(model_cls: type[M], data: Any, *, root: str = "", stored: bool = False) -> M:
    """Validate ``data`` as ``model_cls``; any failure becomes a :class:`SpecError`.

    ``root`` prefixes the error target, for documents that are a part of a bigger one (the
    CLI validating ``mountVolumes`` given on its own, say). Only the first error is reported,
    as ARM did: fixing one field at a time with an exact pointer beats a wall of errors.
    ``stored``: ``data`` is a spec as stored, without its secret values (see :data:`STORED`).
    """
    _check_text(data, root)
    try:
        return model_cls.model_validate(data, context=STORED if stored else None)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc: list[str | int] = list(first["loc"])
        error = first.get("ctx", {}).get("error")
        if isinstance(error, FieldError):
            loc.extend(error.loc)
        target = format_location(loc, root=root)
        # ``from None``: pydantic's own message echoes every input value, secrets included.
        raise SpecError(_describe(first, target), target=target or None) from None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _check_text(data: Any, where: str) -> None:
    """Refuse a NUL byte or a lone surrogate (``"\\ud800"`` in JSON) in any string.

    Neither can reach a job: a NUL ends a C string (an argument, a variable, a path), and a
    lone surrogate has no UTF-8 form, so the job would fail to start, or the store to write.
    """
    if isinstance(data, str):
        found = _UNSTORABLE.search(data)
        if found is not None:
            what = "a NUL byte" if found.group() == "\x00" else "a lone UTF-16 surrogate"
            # the value itself is not echoed: it may be a secret
            raise SpecError(
                f"{where or 'the document'} must not contain {what} (at character {found.start()})",
                target=where or None,
            )
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and _UNSTORABLE.search(key):
                raise SpecError(
                    f"{where or 'the document'} has a key {key!r} with a NUL byte or a lone"
                    " surrogate",
                    target=where or None,
                )
            _check_text(value, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _check_text(item, f"{where}[{index}]")


def unknown_keys(model_cls: type[BaseModel], data: Any, *, root: str = "") -> list[str]:
    """Where ``data`` holds keys that ``model_cls`` does not know, and so ignores.

    ``{"properties": {"nodeCont": 2}}`` as a job gives ``["properties.nodeCont"]``: a typo
    that :func:`parse` lets through (as ARM did), which the CLI can warn about. Keys starting
    with ``$`` (``$schema``) are not reported.
    """
    found: list[str] = []
    _collect_unknown(model_cls, data, root, found)
    return found


def _collect_unknown(annotation: Any, data: Any, path: str, found: list[str]) -> None:
    if isinstance(data, list):
        item_type = _item_type(annotation)
        for index, item in enumerate(data):
            _collect_unknown(item_type, item, f"{path}[{index}]", found)
        return
    model = _model_in(annotation)
    if model is None or not isinstance(data, dict):
        return
    fields = {}
    for name, info in model.model_fields.items():
        fields[name] = info.annotation
        if info.alias:
            fields[info.alias] = info.annotation
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key in fields:
            _collect_unknown(fields[key], value, where, found)
        elif not key.startswith("$") and key not in getattr(model, "legacy_keys", ()):
            found.append(where)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The one model class ``annotation`` is, or is an optional of."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [m for m in map(_model_in, typing.get_args(annotation)) if m is not None]
        return models[0] if len(models) == 1 else None
    return None


def _item_type(annotation: Any) -> Any:
    """The item type of a list (or optional list) annotation; ``None`` if it is not one."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, Sequence):
        args = typing.get_args(annotation)
        return args[0] if args else None
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            item = _item_type(arg)
            if item is not None:
                return item
    return None


_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
}


def _describe(error: ErrorDetails, target: str) -> str:
    """One sentence in plain words; input is echoed only where it cannot be a secret."""
    kind = error["type"]
    ctx = error.get("ctx", {})
    subject = target or "the document"
    given = error.get("input")
    if kind == "missing":
        return f"{subject} is required"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        text = str(ctx["error"])
        return f"{subject} {text}" if text.startswith("must ") else f"{subject}: {text}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{subject} must be an integer, got {_short(given)}"
    if kind in _TYPE_NAMES:
        return f"{subject} must be {_TYPE_NAMES[kind]}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        return f"{subject} must be {words[0]} {ctx.get(words[1])}, got {_short(given)}"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return f"{subject} must not be empty"
        return f"{subject} must be at least {ctx.get('min_length')} characters long"
    if kind == "string_too_long":
        return f"{subject} must be at most {ctx.get('max_length')} characters long"
    if kind in ("too_long", "too_short"):
        return f"{subject} has the wrong number of items: {error['msg'].lower()}"
    if kind in ("literal_error", "enum"):
        return f"{subject} must be {ctx.get('expected')}, got {_short(given)}"
    if kind == "string_pattern_mismatch":
        return f"{subject} must match the pattern {ctx.get('pattern')}"
    return f"{subject}: {error['msg']}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_json_file(path: Path, *, field: str = "file") -> dict[str, Any]:
    """Read a config file (job.json, cluster.json ...) that must hold one JSON object.

    Errors name the file and, for a syntax error, the line and column, with a hint for the
    most common mistake (a trailing comma), because ``json`` alone says only "Expecting
    property name enclosed in double quotes".
    """
    try:
        with path.open("rb") as f:  # at most one byte past the limit: /dev/zero ends here
            raw = f.read(documents.MAX_DOCUMENT_BYTES + 1)
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}", target=field) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path} is not UTF-8 text: {exc.reason}", target=field) from None
    if len(raw) > documents.MAX_DOCUMENT_BYTES:
        raise documents.too_large(str(path), field=field)
    try:
        data = documents.loads(text, what=str(path), field=field)
    except json.JSONDecodeError as exc:
        hint = " (a trailing comma?)" if _follows_comma(text, exc.pos) else ""
        raise SpecError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}{hint}",
            target=field,
        ) from None
    if not isinstance(data, dict):
        raise SpecError(
            f"{path} must hold a JSON object ({{...}}), not a {type(data).__name__}",
            target=field,
        )
    return data


def _follows_comma(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return before.endswith(",") and text[pos : pos + 1] in ("}", "]")
