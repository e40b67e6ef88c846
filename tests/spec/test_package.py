"""The public surface of openbai.spec: every name of ``__all__`` resolves (each is imported on
first use, so a command that needs one model does not build them all), from the module the
package says it lives in."""

import importlib

import pytest

import openbai.spec


def test_all_is_sorted_and_names_exactly_the_lazy_exports() -> None:
    assert sorted(openbai.spec.__all__) == openbai.spec.__all__
    assert set(openbai.spec.__all__) == set(openbai.spec._HOMES)


@pytest.mark.parametrize("name", openbai.spec.__all__)
def test_each_exported_name_resolves_from_its_home(name: str) -> None:
    home = importlib.import_module(openbai.spec._HOMES[name])
    assert getattr(openbai.spec, name) is getattr(home, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        openbai.spec.NoSuchModel  # noqa: B018
