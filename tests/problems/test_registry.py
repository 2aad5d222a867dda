"""The one Registry type: every registry below analysis (found by walking the modules of
problems, runners and lab, not listed by hand) rejects a second entry under a taken name and
answers an unknown name with the house error 'field: got X; allowed: a, b, c'."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import lab
import problems
import runners
from lab import executors
from problems.params import ParamError
from problems.registry import DuplicateName, Registry, UnknownName
from runners import orth


def all_registries() -> dict[str, Registry]:
    """Every module-level Registry, under the module that defines it."""
    found = {}
    for pkg in (problems, runners, lab):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            mod = importlib.import_module(info.name)
            src = inspect.getsource(mod)
            for attr, value in vars(mod).items():
                if isinstance(value, Registry) and re.search(rf"^{attr} = Registry\(", src, re.M):
                    found[f"{info.name}.{attr}"] = value
    return found


REGISTRIES = all_registries()


def test_the_registries_of_the_house_are_found():
    names = set(REGISTRIES)
    for expected in (
        "problems.registry.REGISTRY",
        "runners.registry.REGISTRY",
        "runners.orth.ORTH",
        "runners.orth.COEFFICIENTS",
        "problems.quadratic.HESSIANS",
        "lab.executors.EXECUTORS",
    ):
        assert expected in names
    assert problems.REGISTRY is REGISTRIES["problems.registry.REGISTRY"]
    assert runners.REGISTRY is REGISTRIES["runners.registry.REGISTRY"]


@pytest.mark.parametrize("where", sorted(REGISTRIES))
def test_a_duplicate_name_raises_and_changes_nothing(where):
    reg = REGISTRIES[where]
    name = reg.names()[0]
    before = (reg.names(), reg.get(name))
    with pytest.raises(DuplicateName, match=f"{name!r} registered twice"):
        reg.add(name, object())
    assert (reg.names(), reg.get(name)) == before


@pytest.mark.parametrize("where", sorted(REGISTRIES))
def test_an_unknown_name_gives_the_house_error(where):
    reg = REGISTRIES[where]
    with pytest.raises(UnknownName) as err:
        reg.get("no_such_entry")
    assert isinstance(err.value, ParamError)
    assert str(err.value) == f"{reg.field}: got 'no_such_entry'; allowed: {', '.join(sorted(reg.names()))}"
    with pytest.raises(UnknownName):
        reg[["unhashable"]]
    assert "no_such_entry" not in reg and ["unhashable"] not in reg


def test_registry_basics():
    reg = Registry("thing", "test thing")

    @reg.register("b")
    def b():
        return 2

    assert b() == 2 and reg.add("a", 1) == 1
    assert list(reg) == ["b", "a"] == list(reg.names()) and len(reg) == 2
    assert "a" in reg and reg["a"] == 1 and reg.get("b") is b
    assert dict(reg.items()) == {"b": b, "a": 1}
    with pytest.raises(ValueError):
        reg.add("", 3)
    with pytest.raises(UnknownName, match=r"^thing: got 'c'; allowed: a, b$"):
        reg.get("c")


def test_the_registering_functions_reject_a_taken_name():
    class Dup(problems.Problem):
        PARAMS = {}

    with pytest.raises(DuplicateName):
        problems.register("quadratic")(Dup)
    assert Dup.kind == "base" and problems.get("quadratic").cls is not Dup

    class DupOpt:
        FAMILY, ORACLE_CALLS, PAPERS, HPARAMS = "euclidean", 1, (), {}

    with pytest.raises(DuplicateName):
        runners.register("gd")(DupOpt)
    assert not hasattr(DupOpt, "name") and runners.get("gd") is not DupOpt
    with pytest.raises(ValueError, match="registered twice"):
        orth.register_coefficients("ns_keller", [(1.5, -0.5, 0.0)])
    with pytest.raises(DuplicateName):
        executors.register("local")(lambda jobs, store, progress=True: None)


def test_the_public_lookups_give_the_house_error():
    with pytest.raises(UnknownName, match=r"^kind: got 'rosenbrock'; allowed: .*quadratic"):
        problems.make("rosenbrock")
    with pytest.raises(UnknownName, match=r"^name: got 'adamw'; allowed: .*muon"):
        runners.make("adamw")
    with pytest.raises(UnknownName, match=r"^executor: got 'ray'; allowed: dask, local$"):
        executors.get("ray")
    with pytest.raises(ParamError, match=r"^hessian: got 'diagonal'"):
        problems.make("quadratic", hessian="diagonal")
