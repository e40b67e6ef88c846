"""parse() and load_json_file(): how user JSON enters openbai, and how it is refused."""

from pathlib import Path
from typing import Any

import pytest

from openbai.errors import SpecError
from openbai.spec import JobCreateParameters, MountVolumes, load_json_file, parse

MINIMAL_JOB = {
    "properties": {
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": "echo hi"},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
    }
}


def job_with(**properties: Any) -> dict[str, Any]:
    return {"properties": {**MINIMAL_JOB["properties"], **properties}}


def test_unknown_keys_are_ignored_as_arm_did() -> None:
    data = {
        "$schema": "https://raw.githubusercontent.com/Azure/BatchAI/master/schemas/2018-05-01/job.json",
        "comment": "anything",
        "location": "eastus",
        "properties": {**MINIMAL_JOB["properties"], "toolType": "custom", "experimentName": "x"},
    }

    job = parse(JobCreateParameters, data)

    wire = job.to_wire()
    assert "$schema" not in wire and "comment" not in wire
    assert "toolType" not in wire["properties"]


def test_to_wire_is_camel_case_without_nulls() -> None:
    job = parse(JobCreateParameters, MINIMAL_JOB)

    props = job.to_wire()["properties"]

    assert props["stdOutErrPathPrefix"] == "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"
    assert props["customToolkitSettings"] == {"commandLine": "echo hi"}
    assert "cluster" not in props and "containerSettings" not in props


def test_models_accept_snake_case_field_names_from_python() -> None:
    volumes = MountVolumes(unmanaged_file_systems=[])
    assert volumes.to_wire()["unmanagedFileSystems"] == []


def test_a_wrong_type_names_the_field_and_the_value() -> None:
    with pytest.raises(SpecError) as info:
        parse(JobCreateParameters, job_with(nodeCount="abc"))

    assert info.value.target == "properties.nodeCount"
    assert "properties.nodeCount" in info.value.message
    assert "integer" in info.value.message and "'abc'" in info.value.message
    assert info.value.code == "InvalidParameter"


def test_a_missing_field_says_required() -> None:
    with pytest.raises(SpecError) as info:
        parse(JobCreateParameters, {"properties": {"nodeCount": 1, "customToolkitSettings": {}}})

    assert info.value.target == "properties.stdOutErrPathPrefix"
    assert info.value.message == "properties.stdOutErrPathPrefix is required"


def test_list_items_are_located_with_brackets() -> None:
    data = job_with(outputDirectories=[{"id": "A", "pathPrefix": "/x"}, {"id": "B"}])

    with pytest.raises(SpecError) as info:
        parse(JobCreateParameters, data)

    assert info.value.target == "properties.outputDirectories[1].pathPrefix"


def test_root_prefixes_the_target() -> None:
    with pytest.raises(SpecError) as info:
        parse(MountVolumes, {"azureFileShares": [{"azureFileUrl": "x"}]}, root="mountVolumes")

    assert info.value.target == "mountVolumes.azureFileShares[0].azureFileUrl"


def test_a_document_that_is_not_an_object() -> None:
    with pytest.raises(SpecError) as info:
        parse(JobCreateParameters, ["not", "an", "object"])

    assert info.value.target is None
    assert "JSON object" in info.value.message


def test_load_json_file_reads_an_object(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{"properties": {"nodeCount": 2}}')

    assert load_json_file(path) == {"properties": {"nodeCount": 2}}


def test_load_json_file_accepts_a_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')

    assert load_json_file(path) == {"a": 1}


def test_trailing_comma_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{\n    "properties": {\n        "nodeCount": 2,\n    }\n}\n')

    with pytest.raises(SpecError) as info:
        load_json_file(path, field="config")

    message = info.value.message
    assert str(path) in message
    assert "line 4, column 5" in message
    assert "trailing comma" in message
    assert info.value.target == "config"


def test_a_json_array_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text("[1, 2]")

    with pytest.raises(SpecError) as info:
        load_json_file(path)

    assert str(path) in info.value.message and "JSON object" in info.value.message
    assert info.value.target == "file"


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_json_file(tmp_path / "nope.json")

    assert "nope.json" in info.value.message


def test_unknown_keys_are_found_where_they_are() -> None:
    from openbai.spec.base import unknown_keys

    job = {
        "$schema": "https://raw.githubusercontent.com/Azure/BatchAI/master/schemas/2018-05-01/job.json",
        "properties": {
            "nodeCont": 2,
            "customToolkitSettings": {"commandLine": "true"},
            "mountVolumes": {
                "azureFileShares": [
                    {"azureFileUrl": "https://a.file.core.windows.net/s", "relativeMountPath": "s"},
                    {"azureFileUrl": "https://a.file.core.windows.net/t", "relativMountPath": "t"},
                ]
            },
            "outputDirectories": [{"id": "M", "pathPrefix": "$X", "type": "custom"}],
        },
    }
    assert unknown_keys(JobCreateParameters, job) == [
        "properties.nodeCont",
        "properties.mountVolumes.azureFileShares[1].relativMountPath",
    ]
    assert unknown_keys(JobCreateParameters, {"properties": {"nodeCount": 1}}) == []


def test_keys_batch_ai_accepted_are_not_reported() -> None:
    """2017-09-01-preview's keys and a GET's read-only toolType, fed back by users, are no typos;
    credentialsInfo (2017's name of credentials) is read as credentials."""
    from openbai.spec.base import unknown_keys

    job = {
        "location": "eastus",
        "properties": {
            **MINIMAL_JOB["properties"],
            "location": "eastus",
            "toolType": "custom",
            "experimentName": "exp",
            "priority": 0,
            "outputDirectories": [
                {"id": "M", "pathPrefix": "$X", "type": "model", "createNew": False}
            ],
            "mountVolumes": {
                "azureFileShares": [
                    {
                        "azureFileUrl": "https://a.file.core.windows.net/s",
                        "relativeMountPath": "s",
                        "credentialsInfo": {"accountKey": "k3y"},
                    }
                ]
            },
        },
    }

    assert unknown_keys(JobCreateParameters, job) == []
    share = parse(JobCreateParameters, job).properties.mount_volumes.azure_file_shares[0]  # type: ignore[union-attr]
    assert share.credentials is not None and share.credentials.account_key == "k3y"
