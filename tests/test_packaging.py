"""What a wheel installs: every package, under the project's own namespace, with the eval sets as package data.

scripts/wheel_check.sh builds and installs the real wheel (in scripts/test.sh); these catch the usual slips fast.
"""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_is_installed_and_ui_and_eval_live_under_rag() -> None:
    folders = sorted(".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "rag").rglob("__init__.py"))
    assert sorted(SETUPTOOLS["packages"]) == sorted([*folders, "rag.ui", "rag.eval"])
    assert SETUPTOOLS["package-dir"] == {"rag.ui": "ui", "rag.eval": "eval"}


def test_the_eval_sets_and_thresholds_are_package_data() -> None:
    patterns = SETUPTOOLS["package-data"]["rag.eval"]
    data = [p.name for p in (ROOT / "eval").iterdir() if p.is_file() and p.suffix != ".py"]
    assert data and all(any(fnmatch.fnmatch(name, pat) for pat in patterns) for name in data), data


def test_nothing_imports_ui_or_eval_as_top_level_packages() -> None:
    """Installed, there is no `ui` or `eval` package; in a checkout, importing one would load a second copy."""
    offenders = []
    for path in [*ROOT.glob("rag/**/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("eval/*.py"), *ROOT.glob("tests/**/*.py"),
                 *ROOT.glob("bench/*.py")]:  # fmt: skip
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("ui", "eval")]
    assert offenders == []
