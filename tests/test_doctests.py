"""Run the Examples in every module's docstrings (NumPy style), imported by their real names.

pytest's ``--doctest-modules`` would import ``codecs/`` as a top-level ``codecs`` (shadowing the
standard library), so the modules are walked from the installed ``dvo`` namespace instead.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

SKIP = {"dvo.remote"}  # a worker program: importing it is fine, but it has no examples


def _modules() -> list[str]:
    import dvo.codecs
    import dvo.skytable
    import dvo.tools

    names = []
    for package in (dvo, dvo.codecs, dvo.skytable, dvo.tools):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name not in SKIP and ".cli." not in info.name and "__main__" not in info.name:
                names.append(info.name)
    return sorted(set(names))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
