"""Layout invariants from docs/architecture.md: the platform/ trap, and every package listed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_platform_from_the_repo_root_is_the_standard_library():
    out = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.__file__); print(platform.system())"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert not Path(out[0]).is_relative_to(REPO)
    assert out[1] == "Linux"  # platform.system() from the standard library


def test_platform_is_a_source_root_not_a_package():
    assert not (REPO / "platform" / "__init__.py").exists()


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {name: REPO / path for name, path in config["package-dir"].items()}
    found = set()
    for name, root in roots.items():
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            found.add(".".join((name, *relative)))
    assert found == set(config["packages"])


def test_strategies_import_only_torch():
    """The math stays testable in milliseconds: no ray, optuna, mlflow or transformers."""
    code = (
        "import sys, polytask.strategies.weighting, polytask.strategies.sharing;"
        "print(sorted(m for m in ('ray', 'optuna', 'mlflow', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
