"""JobCreateParameters: real job.json files, and the mistakes users make in them."""

from datetime import timedelta
from typing import Any

import pytest
from conftest import SAMPLES

from openbai.errors import SpecError
from openbai.spec import JobCreateParameters, load_json_file, parse
from openbai.spec.toolkits import PyTorchSettings

EXPECTED = {
    "batchai-recipes/CNTK/CNTK-GPU-BrainScript/job.json": ("cntk", 1),
    "batchai-recipes/CNTK/CNTK-GPU-Python/job.json": ("cntk", 1),
    "batchai-recipes/Caffe2/Caffe2-GPU-Distributed/job.json": ("caffe2", 2),
    "batchai-recipes/Chainer/Chainer-GPU-Distributed/job.json": ("chainer", 2),
    "batchai-recipes/Horovod/Horovod-PyTorch/job.json": ("horovod", 2),
    "batchai-recipes/Keras/Keras-GPU/job_tensorflow.json": ("tensorflow", 1),
    "batchai-recipes/PyTorch/PyTorch-GPU-Distributed-Gloo/job.json": ("pytorch", 2),
    "batchai-recipes/TensorFlow/TensorFlow-GPU/job.json": ("tensorflow", 1),
    "doc-snippets/job__cntk_reference_full.json": ("cntk", 1),
}


def sample_jobs() -> list[str]:
    return sorted(
        str(path.relative_to(SAMPLES))
        for path in SAMPLES.rglob("*.json")
        if path.name.startswith("job")
    )


@pytest.mark.usefixtures("samples")  # skipped without ../shared, failed in CI
def test_every_sample_job_is_known_to_this_test() -> None:
    assert sample_jobs() == sorted(EXPECTED)


@pytest.mark.usefixtures("samples")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_jobs_parse(name: str) -> None:
    job = parse(JobCreateParameters, load_json_file(SAMPLES / name))

    assert (job.properties.tool_type, job.properties.node_count) == EXPECTED[name]
    assert job.properties.toolkit is not None
    assert job.to_wire()["properties"]["constraints"] == {"maxWallClockTime": "P7D"}


def custom_job(**properties: Any) -> dict[str, Any]:
    return {
        "properties": {
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": "echo hi"},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            **properties,
        }
    }


def refusal(data: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(JobCreateParameters, data)
    return info.value


def test_defaults() -> None:
    props = parse(JobCreateParameters, custom_job()).properties

    assert props.node_count == 1
    assert props.scheduling_priority == "normal"
    assert props.cluster is None
    assert props.constraints.max_wall_clock_time == timedelta(days=7)
    assert props.tool_type == "custom"


def test_cluster_reference_and_priority() -> None:
    props = parse(
        JobCreateParameters,
        custom_job(cluster={"id": "/subscriptions/s/clusters/nc6"}, schedulingPriority="HIGH"),
    ).properties

    assert props.cluster is not None and props.cluster.id == "/subscriptions/s/clusters/nc6"
    assert props.scheduling_priority == "high"


def test_legacy_priority_key_is_read() -> None:
    assert (
        parse(JobCreateParameters, custom_job(priority="low")).properties.scheduling_priority
        == "low"
    )
    assert (
        parse(JobCreateParameters, custom_job(priority=100)).properties.scheduling_priority
        == "normal"
    )


def test_bad_priority() -> None:
    error = refusal(custom_job(schedulingPriority="urgent"))

    assert error.target == "properties.schedulingPriority"
    assert "'low', 'normal' or 'high'" in error.message


@pytest.mark.parametrize(
    ("count", "words"),
    [
        ("abc", "must be an integer"),
        ("2", "must be an integer"),
        (0, "at least 1"),
        (101, "at most 100"),
    ],
)
def test_bad_node_counts(count: object, words: str) -> None:
    error = refusal(custom_job(nodeCount=count))

    assert error.target == "properties.nodeCount"
    assert words in error.message


def test_no_toolkit() -> None:
    data = custom_job()
    del data["properties"]["customToolkitSettings"]

    error = refusal(data)

    assert error.target == "properties"
    assert "a job needs exactly one of cntkSettings, pyTorchSettings" in error.message


def test_two_toolkits_name_the_second() -> None:
    error = refusal(custom_job(horovodSettings={"pythonScriptFilePath": "a.py"}))

    assert error.target == "properties.horovodSettings"
    assert "customToolkitSettings and horovodSettings" in error.message


@pytest.mark.parametrize("prefix", [None, ""])
def test_std_out_err_path_prefix_is_required(prefix: str | None) -> None:
    data = custom_job(stdOutErrPathPrefix=prefix)
    if prefix is None:
        del data["properties"]["stdOutErrPathPrefix"]

    error = refusal(data)

    assert error.target == "properties.stdOutErrPathPrefix"


def test_duplicate_output_directory_ids() -> None:
    outputs = [
        {"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"},
        {"id": "LOGS", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"},
        {"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"},
    ]

    error = refusal(custom_job(outputDirectories=outputs))

    assert error.target == "properties.outputDirectories[2].id"
    assert "duplicate output directory id 'MODEL'" in error.message


def test_duplicate_input_directory_ids() -> None:
    inputs = [{"id": "DATA", "path": "/a"}, {"id": "DATA", "path": "/b"}]

    assert (
        refusal(custom_job(inputDirectories=inputs)).target == "properties.inputDirectories[1].id"
    )


@pytest.mark.parametrize(
    ("output", "target"),
    [
        ({"id": "stdouterr", "pathPrefix": "/p"}, "properties.outputDirectories[0].id"),
        ({"id": "my-model", "pathPrefix": "/p"}, "properties.outputDirectories[0].id"),
        (
            {"id": "M", "pathPrefix": "/p", "pathSuffix": "../up"},
            "properties.outputDirectories[0].pathSuffix",
        ),
        (
            {"id": "M", "pathPrefix": "/p", "pathSuffix": "/abs"},
            "properties.outputDirectories[0].pathSuffix",
        ),
    ],
)
def test_bad_output_directories(output: dict[str, Any], target: str) -> None:
    assert refusal(custom_job(outputDirectories=[output])).target == target


def test_variable_names_are_unique_across_variables_and_secrets() -> None:
    error = refusal(
        custom_job(
            environmentVariables=[{"name": "TOKEN", "value": "a"}],
            secrets=[{"name": "TOKEN", "value": "b"}],
        )
    )

    assert error.target == "properties.secrets[0].name"
    assert "environmentVariables[0]" in error.message


def test_secrets_are_stored_but_never_shown() -> None:
    job = parse(
        JobCreateParameters,
        custom_job(
            secrets=[{"name": "TOKEN", "value": "s3cr3t-value"}],
            containerSettings={
                "imageSourceRegistry": {
                    "serverUrl": "registry.example.com",
                    "image": "registry.example.com/team/image:1",
                    "credentials": {"username": "bot", "password": "registry-password"},
                }
            },
        ),
    )

    for text in (repr(job), str(job), str(job.to_public_wire())):
        assert "s3cr3t-value" not in text and "registry-password" not in text
    public = job.to_public_wire()["properties"]
    assert public["secrets"] == [{"name": "TOKEN"}]
    assert public["containerSettings"]["imageSourceRegistry"]["credentials"] == {"username": "bot"}
    stored = job.to_wire()["properties"]
    assert stored["secrets"] == [{"name": "TOKEN", "value": "s3cr3t-value"}]
    assert stored["containerSettings"]["imageSourceRegistry"]["credentials"]["password"] == (
        "registry-password"
    )


def test_registry_credentials_need_a_password_or_a_reference() -> None:
    error = refusal(
        custom_job(
            containerSettings={
                "imageSourceRegistry": {"image": "i", "credentials": {"username": "u"}}
            }
        )
    )

    assert error.target == "properties.containerSettings.imageSourceRegistry.credentials"


def test_an_image_is_a_reference_never_a_runtime_option() -> None:
    for image in ("ubuntu", "tensorflow/tensorflow:1.8.0-gpu-py3", "reg.io:5000/team/img:1"):
        job = custom_job(containerSettings={"imageSourceRegistry": {"image": image}})
        assert parse(JobCreateParameters, job).properties.container_settings is not None
    for image in ("--help", "--privileged", "ubuntu --rm", "Ubuntu", "ubuntu:", "a\nb"):
        bad = custom_job(containerSettings={"imageSourceRegistry": {"image": image}})
        error = refusal(bad)
        assert error.target == "properties.containerSettings.imageSourceRegistry.image", image
        assert "not an image reference" in str(error)
    bad = custom_job(
        containerSettings={"imageSourceRegistry": {"image": "i", "serverUrl": "--tls-verify=false"}}
    )
    assert refusal(bad).target == "properties.containerSettings.imageSourceRegistry.serverUrl"


def test_shm_size_uses_docker_format() -> None:
    ok = custom_job(containerSettings={"imageSourceRegistry": {"image": "i"}, "shmSize": "16gb"})
    assert parse(JobCreateParameters, ok).properties.container_settings is not None

    bad = custom_job(containerSettings={"imageSourceRegistry": {"image": "i"}, "shmSize": "lots"})
    assert refusal(bad).target == "properties.containerSettings.shmSize"


def test_max_wall_clock_time_in_any_spelling_goes_out_as_iso() -> None:
    for spelling in ("1:30:00", "PT1H30M", "0 days, 1:30:00"):
        job = parse(JobCreateParameters, custom_job(constraints={"maxWallClockTime": spelling}))
        assert job.to_wire()["properties"]["constraints"] == {"maxWallClockTime": "PT1H30M"}


def test_bad_max_wall_clock_time() -> None:
    error = refusal(custom_job(constraints={"maxWallClockTime": "8.00:00:00"}))

    assert error.target == "properties.constraints.maxWallClockTime"


def test_parameter_servers_cannot_outnumber_nodes() -> None:
    data = custom_job(nodeCount=2)
    del data["properties"]["customToolkitSettings"]
    data["properties"]["tensorFlowSettings"] = {
        "pythonScriptFilePath": "a.py",
        "parameterServerCount": 3,
    }

    assert refusal(data).target == "properties.tensorFlowSettings.parameterServerCount"


def test_pytorch_backend_is_checked_ignoring_case_and_kept_as_written() -> None:
    data = custom_job()
    del data["properties"]["customToolkitSettings"]
    data["properties"]["pyTorchSettings"] = {
        "pythonScriptFilePath": "a.py",
        "communicationBackend": "gloo",
    }

    props = parse(JobCreateParameters, data).properties

    assert props.tool_type == "pytorch"
    assert isinstance(props.toolkit, PyTorchSettings)
    assert props.toolkit.communication_backend == "gloo"


def test_unknown_pytorch_backend() -> None:
    data = custom_job()
    del data["properties"]["customToolkitSettings"]
    data["properties"]["pyTorchSettings"] = {
        "pythonScriptFilePath": "a.py",
        "communicationBackend": "nccl",
    }

    error = refusal(data)

    assert error.target == "properties.pyTorchSettings.communicationBackend"
    assert "'TCP', 'Gloo' or 'MPI'" in error.message
