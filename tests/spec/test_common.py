"""Names, durations and environment variables shared by all resources."""

from datetime import timedelta

import pytest

from openbai.errors import SpecError
from openbai.spec import (
    EnvironmentVariable,
    EnvironmentVariableWithSecretValue,
    check_name,
    check_resource_group,
    parse,
)
from openbai.spec.base import WireModel
from openbai.spec.common import Duration, format_duration, parse_duration


class Limits(WireModel):
    max_wall_clock_time: Duration


@pytest.mark.parametrize("name", ["recipe_workspace", "nc6", "a", "job-1_B", "x" * 64])
def test_check_name_accepts_batch_ai_names(name: str) -> None:
    assert check_name(name, field="jobName") == name


@pytest.mark.parametrize("name", ["", "has space", "dot.ted", "slash/y", "ümlaut", "x" * 65])
def test_check_name_refuses_bad_names(name: str) -> None:
    with pytest.raises(SpecError) as info:
        check_name(name, field="jobName")

    assert info.value.target == "jobName"
    assert "jobName" in info.value.message


def test_resource_groups_may_contain_dots() -> None:
    assert check_resource_group("batchai.recipes", field="resourceGroup") == "batchai.recipes"
    with pytest.raises(SpecError):
        check_resource_group("x" * 91, field="resourceGroup")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("P1W", timedelta(days=7)),
        ("PT1,5H", timedelta(hours=1, minutes=30)),
        ("P0.5D", timedelta(hours=12)),
        ("P0Y0M1DT0H", timedelta(days=1)),
        ("pt10m", timedelta(minutes=10)),
        ("7.00:00:00", timedelta(days=7)),
        ("1:30:00", timedelta(hours=1, minutes=30)),
        ("00:00:05", timedelta(seconds=5)),
        ("2.03:04:05.5", timedelta(days=2, hours=3, minutes=4, seconds=5.5)),
        ("7 days, 0:00:00", timedelta(days=7)),
        ("1 day, 2:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ],
)
def test_parse_duration_spellings(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (timedelta(days=7), "P7D"),
        (timedelta(seconds=5), "PT5S"),
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        (timedelta(days=1, hours=2), "P1DT2H"),
        (timedelta(milliseconds=500), "PT0.5S"),
    ],
)
def test_format_duration_is_iso_8601(value: timedelta, wire: str) -> None:
    assert format_duration(value) == wire
    assert parse_duration(wire) == value


def test_durations_round_trip_to_iso_on_the_wire() -> None:
    limits = parse(Limits, {"maxWallClockTime": "7.00:00:00"})

    assert limits.max_wall_clock_time == timedelta(days=7)
    assert limits.to_wire() == {"maxWallClockTime": "P7D"}
    assert parse(Limits, {"maxWallClockTime": "00:00:05"}).to_wire() == {"maxWallClockTime": "PT5S"}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("soon", "not a duration"),
        ("PT", "not a duration"),
        ("P1D2H", "not a duration"),
        ("P1M", "at most 7 days"),
        ("P100Y", "at most 7 days"),
        ("PT99999999999999999999S", "at most 7 days"),
        ("99999999999999.00:00:00", "at most 7 days"),
        ("-P1D", "longer than zero"),
        ("1:75:00", "out of range"),
        ("PT0S", "longer than zero"),
        ("P8D", "at most 7 days"),
        ("7.00:00:01", "at most 7 days"),
        (3600, "duration string"),
    ],
)
def test_bad_durations_name_the_field(value: object, words: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(Limits, {"maxWallClockTime": value})

    assert info.value.target == "maxWallClockTime"
    assert words in info.value.message


def test_environment_variable_names_must_be_shell_identifiers() -> None:
    assert parse(EnvironmentVariable, {"name": "_A1", "value": ""}).name == "_A1"

    with pytest.raises(SpecError) as info:
        parse(EnvironmentVariable, {"name": "1A", "value": "x"})

    assert info.value.target == "name"
    assert "environment variable name" in info.value.message


def test_a_secret_needs_exactly_one_source() -> None:
    reference = {"sourceVault": {"id": "/vault"}, "secretUrl": "https://v/secrets/s"}
    both = {"name": "S", "value": "v", "valueSecretReference": reference}

    for data in ({"name": "S"}, both):
        with pytest.raises(SpecError) as info:
            parse(EnvironmentVariableWithSecretValue, data, root="secrets[0]")
        assert info.value.target == "secrets[0]"
        assert "exactly one of value or valueSecretReference" in info.value.message


def test_a_secret_value_is_not_in_repr() -> None:
    secret = parse(EnvironmentVariableWithSecretValue, {"name": "S", "value": "hunter2"})

    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert secret.value == "hunter2"
    assert secret.to_wire() == {"name": "S", "value": "hunter2"}
    assert secret.to_public_wire() == {"name": "S"}
