"""Toolkit settings: each toolkit's own rules."""

from typing import Any

import pytest

from openbai.errors import SpecError
from openbai.spec import parse
from openbai.spec.toolkits import TOOL_TYPES, CaffeSettings, CNTKSettings, TensorFlowSettings


def test_cntk_language_is_inferred_from_the_path_given() -> None:
    brainscript = parse(CNTKSettings, {"configFilePath": "$AZ_BATCHAI_INPUT_CONFIG/a.cntk"})
    python = parse(CNTKSettings, {"pythonScriptFilePath": "a.py"})

    assert brainscript.language_type == "BrainScript"
    assert python.language_type == "Python"


def test_cntk_language_is_matched_ignoring_case() -> None:
    settings = parse(CNTKSettings, {"languageType": "python", "pythonScriptFilePath": "a.py"})

    assert settings.language_type == "Python"
    assert settings.to_wire()["languageType"] == "Python"


@pytest.mark.parametrize(
    ("data", "target"),
    [
        ({"languageType": "BrainScript", "pythonScriptFilePath": "a.py"}, "pythonScriptFilePath"),
        ({"languageType": "BrainScript"}, "configFilePath"),
        ({"languageType": "Python", "configFilePath": "a.cntk"}, "configFilePath"),
        ({"languageType": "Lua", "pythonScriptFilePath": "a.py"}, "languageType"),
        ({}, None),
        ({"pythonScriptFilePath": "a.py", "processCount": 0}, "processCount"),
        ({"pythonScriptFilePath": "a.py", "processCount": 10**9}, "processCount"),
    ],
)
def test_cntk_paths_must_match_the_language(data: dict[str, Any], target: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(CNTKSettings, data)

    assert info.value.target == target


def test_caffe_takes_a_config_file_or_a_python_script() -> None:
    assert (
        parse(CaffeSettings, {"configFilePath": "solver.prototxt"}).python_script_file_path is None
    )

    with pytest.raises(SpecError) as both:
        parse(CaffeSettings, {"configFilePath": "s.prototxt", "pythonScriptFilePath": "a.py"})
    with pytest.raises(SpecError) as neither:
        parse(CaffeSettings, {"commandLineArgs": "-gpu all"})
    with pytest.raises(SpecError) as interpreter:
        parse(CaffeSettings, {"configFilePath": "s.prototxt", "pythonInterpreterPath": "/py"})

    assert both.value.target == "pythonScriptFilePath"
    assert neither.value.target is None
    assert interpreter.value.target == "pythonInterpreterPath"


def test_tensorflow_counts_may_be_zero_but_not_negative() -> None:
    settings = parse(
        TensorFlowSettings, {"pythonScriptFilePath": "a.py", "parameterServerCount": 0}
    )
    assert settings.parameter_server_count == 0

    with pytest.raises(SpecError) as info:
        parse(TensorFlowSettings, {"pythonScriptFilePath": "a.py", "workerCount": -1})
    assert info.value.target == "workerCount"


def test_tool_types_cover_every_toolkit() -> None:
    assert sorted(TOOL_TYPES.values()) == sorted(
        ["cntk", "pytorch", "tensorflow", "caffe", "caffe2", "chainer", "custom", "mpi", "horovod"]
    )
