"""Bad input gets a clear error naming the field, a non-zero exit code, and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai

from .conftest import LOGS_AND_SCRIPTS, custom_job, write_job

LOGS_SHARE = LOGS_AND_SCRIPTS["azureFileShares"][0]

#: the recipes' volumes with the data container read-only
READ_ONLY_DATA = {
    **LOGS_AND_SCRIPTS,
    "azureBlobFileSystems": [
        {"accountName": "acct", "containerName": "data", "relativeMountPath": "data",
         "mountOptions": "-o ro"}
    ],
}  # fmt: skip


def jobs(bai: Bai) -> list[str]:
    return [j["name"] for j in bai.json("job", "list", "-w", "ws", "-e", "exp")]


def create(
    bai: Bai, tmp_path: Path, properties: dict[str, Any], *, expect: int = 2, cluster: str = "c1"
) -> str:
    out = bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", "bad",
              "-f", write_job(tmp_path, properties), expect=expect)  # fmt: skip
    assert jobs(bai) == [], "a refused job must not be stored"
    return str(out.stderr)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "mountVolumes": {
                    "azureFileShares": [
                        {
                            "azureFileUrl": "https://acct.file.core.windows.net/logs",
                            "relativeMountPath": "../escape",
                        }
                    ]
                }
            },
            "properties.mountVolumes.azureFileShares[0].relativeMountPath",
        ),
        (
            {
                "mountVolumes": {
                    "azureFileShares": [
                        {
                            "azureFileUrl": "https://acct.file.core.windows.net/logs",
                            "relativeMountPath": "/abs",
                        }
                    ]
                }
            },
            "properties.mountVolumes.azureFileShares[0].relativeMountPath",
        ),
        (
            {
                "outputDirectories": [
                    {
                        "id": "OUT",
                        "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
                        "pathSuffix": "../../x",
                    }
                ]
            },
            "properties.outputDirectories[0].pathSuffix",
        ),
        (
            {
                "outputDirectories": [
                    {"id": "A", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"},
                    {"id": "A", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"},
                ]
            },
            "properties.outputDirectories[1].id",
        ),
        ({"nodeCount": "abc"}, "properties.nodeCount"),
        ({"nodeCount": 0}, "properties.nodeCount"),
        (
            {
                "mountVolumes": {
                    "azureFileShares": [
                        {
                            "azureFileUrl": "https://nosuch.file.core.windows.net/logs",
                            "relativeMountPath": "logs",
                        }
                    ]
                }
            },
            "properties.mountVolumes.azureFileShares[0].azureFileUrl",
        ),
        (
            {
                "mountVolumes": {
                    "azureFileShares": [
                        {
                            "azureFileUrl": "https://acct.file.core.windows.net/nosuch",
                            "relativeMountPath": "logs",
                        }
                    ]
                }
            },
            "properties.mountVolumes.azureFileShares[0].azureFileUrl",
        ),
        (
            {
                "mountVolumes": {
                    "azureBlobFileSystems": [
                        {"accountName": "acct", "containerName": "nosuch", "relativeMountPath": "d"}
                    ]
                }
            },
            "properties.mountVolumes.azureBlobFileSystems[0].containerName",
        ),
        ({"customToolkitSettings": None}, "properties"),
        ({"tensorFlowSettings": {"pythonScriptFilePath": "x.py"}}, "tensorFlowSettings"),
        (
            {"constraints": {"maxWallClockTime": "forever"}},
            "properties.constraints.maxWallClockTime",
        ),
        ({"nodeCount": -1}, "properties.nodeCount"),  # 3 on 2 nodes waits, as on Batch AI
        (
            {"mountVolumes": {"azureFileShares": [{**LOGS_SHARE, "relativeMountPath": "lo\ngs"}]}},
            "properties.mountVolumes.azureFileShares[0].relativeMountPath",
        ),
        (
            {"mountVolumes": {"azureFileShares": [{**LOGS_SHARE, "relativeMountPath": "l" * 256}]}},
            "properties.mountVolumes.azureFileShares[0].relativeMountPath",
        ),
        (
            {
                "mountVolumes": READ_ONLY_DATA,
                "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data",
            },
            "properties.stdOutErrPathPrefix: $AZ_BATCHAI_JOB_MOUNT_ROOT/data is on 'data', mounted"
            " read-only (mountOptions '-o ro')",
        ),
        (
            {
                "mountVolumes": READ_ONLY_DATA,
                "outputDirectories": [
                    {"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/x"}
                ],
            },
            "properties.outputDirectories[0].pathPrefix: $AZ_BATCHAI_JOB_MOUNT_ROOT/data/x is on",
        ),
    ],
)
def test_bad_job_field_is_named_and_nothing_is_stored(
    recipes: Bai, tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    props = {**custom_job("true"), **change}
    if props.get("customToolkitSettings") is None:
        props.pop("customToolkitSettings")
    err = create(recipes, tmp_path, props)
    assert field in err, err


def test_a_registry_password_in_key_vault_is_refused_naming_the_field(
    recipes: Bai, tmp_path: Path
) -> None:
    """openbai cannot read Key Vault: a job whose pull would go without its password is
    refused, not run with an anonymous pull."""
    reference = {"sourceVault": {"id": "/vault"}, "secretUrl": "https://v/secrets/registry"}
    registry = {
        "serverUrl": "registry.example.com",
        "image": "team/private:1",
        "credentials": {"username": "bot", "passwordSecretReference": reference},
    }
    props = custom_job("true", containerSettings={"imageSourceRegistry": registry})
    err = create(recipes, tmp_path, props)
    field = "properties.containerSettings.imageSourceRegistry.credentials.passwordSecretReference"
    assert f"{field}: Key Vault references cannot be resolved by openbai" in err, err


def test_unknown_cluster_is_named(recipes: Bai, tmp_path: Path) -> None:
    err = create(recipes, tmp_path, custom_job("true"), cluster="nosuch")
    assert "properties.cluster.id" in err and "nosuch" in err


def test_missing_stdout_prefix_is_named(recipes: Bai, tmp_path: Path) -> None:
    props = custom_job("true")
    del props["stdOutErrPathPrefix"]
    assert "properties.stdOutErrPathPrefix" in create(recipes, tmp_path, props)


def test_trailing_comma_json_gets_line_and_column(recipes: Bai, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{\n  "properties": {\n    "nodeCount": 1,\n  }\n}\n')
    out = recipes(
        "job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "bad", "-f", str(path), expect=2
    )
    assert "line 4" in out.stderr
    assert jobs(recipes) == []


def test_missing_job_file_is_a_clear_error(recipes: Bai, tmp_path: Path) -> None:
    out = recipes(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        "c1",
        "-n",
        "bad",
        "-f",
        str(tmp_path / "nope.json"),
        expect=2,
    )
    assert "nope.json" in out.stderr


def test_unknown_fields_are_ignored_as_arm_did(recipes: Bai, tmp_path: Path) -> None:
    props = {**custom_job("echo fine"), "comment": "not in the schema", "toolType": "custom"}
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"$schema": "x", "location": "eastus", "properties": props}))
    recipes("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "ok", "-f", str(path))
    assert recipes.wait("ok")["executionState"] == "succeeded"


@pytest.mark.parametrize("name", ["has.dot", "x" * 65, "sp ace", "ünï"])
def test_names_that_break_batch_ai_rules(recipes: Bai, tmp_path: Path, name: str) -> None:
    out = recipes("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", name,
                  "-f", write_job(tmp_path, custom_job("true")), expect=2)  # fmt: skip
    assert "jobName" in out.stderr
    out = recipes("workspace", "create", "-n", name, expect=2)
    assert "workspaceName" in out.stderr


def test_duplicate_job_is_a_conflict(recipes: Bai, tmp_path: Path) -> None:
    job = write_job(tmp_path, custom_job("true"))
    create_once = ("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "once", "-f", job)
    recipes(*create_once)
    out = recipes(*create_once, expect=4)
    assert "already exists" in out.stderr


@pytest.mark.parametrize("path", ["..", "../x", "/etc", "a/../../b"])
def test_file_list_path_cannot_escape_the_output_directory(
    recipes: Bai, tmp_path: Path, path: str
) -> None:
    job = write_job(tmp_path, custom_job("echo hi"))
    recipes("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "j", "-f", job)
    recipes.wait("j")
    out = recipes(
        "job", "file", "list", "-w", "ws", "-e", "exp", "-j", "j", "--path", path, expect=2
    )
    assert "directory" in out.stderr
    out = recipes("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "j",
                  "-f", f"{path}/stdout.txt", expect=2)  # fmt: skip
    assert "file" in out.stderr


BIG = 128 * 1024


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"environmentVariables": [{"name": "BLOB", "value": "x" * BIG}]},
            "properties.environmentVariables[0].value",
            "128 KiB",
        ),
        (
            {"secrets": [{"name": "KEY", "value": "s" * BIG}]},
            "properties.secrets[0].value",
            "128 KiB",
        ),
        (
            {"customToolkitSettings": {"commandLine": "echo " + "x" * BIG}},
            "properties.customToolkitSettings.commandLine",
            "128 KiB",
        ),
        (
            {"jobPreparation": {"commandLine": ": " + "x" * BIG}},
            "properties.jobPreparation.commandLine",
            "128 KiB",
        ),
        (
            {
                "environmentVariables": [
                    {"name": f"PART{i}", "value": "x" * 100_000} for i in range(30)
                ]
            },
            "properties.environmentVariables",
            "ARG_MAX",
        ),
        (
            {"customToolkitSettings": {"commandLine": "echo a\u0000b"}},
            "properties.customToolkitSettings.commandLine",
            "NUL",
        ),
        (
            {"environmentVariables": [{"name": "V", "value": "\ud800"}]},
            "properties.environmentVariables[0].value",
            "surrogate",
        ),
        (
            {"constraints": {"maxWallClockTime": "PT99999999999999999999S"}},
            "properties.constraints.maxWallClockTime",
            "at most 7 days",
        ),
        (
            {"constraints": {"maxWallClockTime": "P100Y"}},
            "properties.constraints.maxWallClockTime",
            "at most 7 days",
        ),
        (
            {"stdOutErrPathPrefix": "/tmp/outside"},
            "properties.stdOutErrPathPrefix",
            "on no volume mounted for the job",
        ),
        (
            {"stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_TEMP"},
            "properties.stdOutErrPathPrefix",
            "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",  # names the volumes it could be on
        ),
        (
            {"stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/../../escape"},
            "properties.stdOutErrPathPrefix",
            "'..'",
        ),
        (
            {"stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/a/../b"},
            "properties.stdOutErrPathPrefix",
            "'..'",
        ),
        (
            {"outputDirectories": [{"id": "OUT", "pathPrefix": "/abs/out"}]},
            "properties.outputDirectories[0].pathPrefix",
            "on no volume mounted for the job",
        ),
        (
            {"outputDirectories": [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/../x"}]},
            "properties.outputDirectories[0].pathPrefix",
            "'..'",
        ),
        (
            {"outputDirectories": [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs"}]},
            "properties.outputDirectories[0].pathPrefix",  # the cluster mounts nothing
            "on no volume mounted for the job",
        ),
        ({"nodeCount": None}, "properties.nodeCount", "required"),
    ],
)
def test_what_would_fail_at_run_time_is_refused_at_create(
    recipes: Bai, tmp_path: Path, change: dict[str, Any], field: str, words: str
) -> None:
    props = {**custom_job("true"), **change}
    if props["nodeCount"] is None:
        del props["nodeCount"]
    err = create(recipes, tmp_path, props)
    assert f"ERROR: {field}" in err, err
    assert words in err, err
    assert "Traceback" not in err
    assert "s" * 100 not in err, "a secret value must not be echoed"


def test_a_job_may_set_its_own_path(recipes: Bai, tmp_path: Path) -> None:
    """bash is not looked up through the job's PATH: the job starts and sees its own PATH."""
    props = custom_job(
        'echo "path=$PATH"', environmentVariables=[{"name": "PATH", "value": "/nonexistent"}]
    )
    recipes("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "path",
            "-f", write_job(tmp_path, props), "-o", "none")  # fmt: skip
    assert recipes.wait("path")["executionState"] == "succeeded"
    out = recipes("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "path",
                  "-f", "stdout.txt")  # fmt: skip
    assert "path=/nonexistent" in out.stdout


def test_the_longest_variable_the_kernel_takes_runs(recipes: Bai, tmp_path: Path) -> None:
    """The limit is the kernel's, not a smaller one: a value just under it is accepted and
    reaches the job whole."""
    value = "v" * (128 * 1024 - len("BIG=") - 1)
    props = custom_job(
        'echo "length=${#BIG}"', environmentVariables=[{"name": "BIG", "value": value}]
    )
    recipes("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "big",
            "-f", write_job(tmp_path, props), "-o", "none")  # fmt: skip
    assert recipes.wait("big")["executionState"] == "succeeded"
    out = recipes("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "big",
                  "-f", "stdout.txt")  # fmt: skip
    assert f"length={len(value)}" in out.stdout


def test_unknown_resources_exit_3(recipes: Bai) -> None:
    assert (
        "not found"
        in recipes("job", "show", "-w", "ws", "-e", "exp", "-n", "nope", expect=3).stderr
    )
    assert "not found" in recipes("cluster", "show", "-w", "ws", "-n", "nope", expect=3).stderr
    assert "not found" in recipes("experiment", "show", "-w", "ws", "-n", "nope", expect=3).stderr
    assert "not found" in recipes("workspace", "show", "-n", "nope", expect=3).stderr
    assert "does not exist" in recipes("storage", "account", "show", "-n", "nope", expect=3).stderr


def test_a_misspelt_job_field_is_warned_about(recipes: Bai, tmp_path: Path) -> None:
    props = custom_job("echo hi")
    props["schedulingPriorty"] = "high"
    created = recipes("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "j",
                      "-f", write_job(tmp_path, props), "-o", "none")  # fmt: skip
    assert created.stderr == (
        "WARNING: properties.schedulingPriorty is not a Batch AI job property; it is ignored\n"
    )
