"""The public surface of openbai.spec."""

import openbai.spec


def test_all_lists_exactly_the_exported_names() -> None:
    exported = {name for name in vars(openbai.spec) if not name.startswith("_")}
    modules = {
        "base",
        "cluster",
        "common",
        "file_server",
        "job",
        "limits",
        "mounts",
        "placeholders",
        "toolkits",
        "workspace",
    }

    assert set(openbai.spec.__all__) == exported - modules
    assert sorted(openbai.spec.__all__) == openbai.spec.__all__
