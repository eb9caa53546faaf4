"""The dependency direction of the design: dvo -> dvo.skytable, dvo.codecs; never back.

codecs/ and skytable/ may import only ``dvo.errors`` (the dependency-free root of the one
exception hierarchy) from the dvo namespace, and never each other.
"""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALLOWED = {"dvo.errors"}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names if node.module == "dvo")
    return names


def _bad_imports(folder: str, other: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in _imports(path):
            if name == "dvo" or name.startswith("dvo."):
                if name not in ALLOWED and not name.startswith(f"dvo.{folder}"):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
                if name.startswith(f"dvo.{other}"):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_codecs_depend_on_nothing_in_dvo():
    assert _bad_imports("codecs", "skytable") == []


def test_skytable_depends_on_nothing_in_dvo():
    assert _bad_imports("skytable", "codecs") == []


def test_plain_codecs_is_the_standard_library(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import codecs, dvo.codecs; print(codecs.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages" not in out and str(ROOT) not in out
    probe = "import importlib.util as u; print(u.find_spec('skytable'))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "None"
