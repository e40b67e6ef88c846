from openbai.runtime.expand import expand_known, expand_path, references


def test_paths_expand_every_reference_and_unknown_names_become_empty() -> None:
    values = {"AZ_BATCHAI_JOB_MOUNT_ROOT": "/n/mounts", "X": "x"}
    assert expand_path("$AZ_BATCHAI_JOB_MOUNT_ROOT/logs", values) == "/n/mounts/logs"
    assert expand_path("${AZ_BATCHAI_JOB_MOUNT_ROOT}/a/$X$X", values) == "/n/mounts/a/xx"
    assert expand_path("$NOPE/a", values) == "/a"


def test_shell_text_keeps_what_bash_should_expand() -> None:
    values = {"AZ_BATCHAI_INPUT_SCRIPT": "/s/train.py"}
    assert (
        expand_known("python $AZ_BATCHAI_INPUT_SCRIPT $1 $RANDOM ${HOME}", values)
        == "python /s/train.py $1 $RANDOM ${HOME}"
    )


def test_references() -> None:
    assert references("$A/${B}/$C_D") == ["A", "B", "C_D"]
