"""The import graph's rules: import-linter's contracts in ``pyproject.toml``
(``[tool.importlinter]``) hold on the package, and each of them breaks on a copy of the
package given the import it forbids."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` run from ``root`` on the ``qpipe`` under it, with its contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_contract_holds():
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout and "BROKEN" not in proc.stdout, proc.stdout


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "qpipe", tmp_path / "qpipe", ignore=shutil.ignore_patterns("*.pyc"))
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("progress.py", "import dagster", "The core never imports dagster or streamlit"),
        ("live/journal.py", "import streamlit", "The core never imports dagster or streamlit"),
        ("data/lake.py", "from qpipe.live import broker", "The data layer never imports the live"),
        ("backtest/result.py", "from qpipe.analytics import charts", "Layers: each package"),
        ("data/sync.py", "from qpipe.project import Project", "No import cycles between sibling"),
        ("settings.py", "from qpipe.defs import build", "Layers: each package"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, broken):
    root = copy_of_the_package(tmp_path)
    path = root / "qpipe" / module
    path.write_text(path.read_text() + f"\n{line}  # added by the test\n")
    proc = lint_imports(root)
    assert proc.returncode != 0, proc.stdout
    report = proc.stdout[proc.stdout.index("Broken contracts") :]
    assert broken in report, proc.stdout
    assert f"qpipe.{module.removesuffix('.py').replace('/', '.')}" in report, proc.stdout


def test_a_new_top_level_module_must_be_placed_in_the_layers(tmp_path):
    root = copy_of_the_package(tmp_path)
    (root / "qpipe" / "stray.py").write_text('"""A module no layer names."""\n')
    proc = lint_imports(root)
    assert proc.returncode != 0, proc.stdout
    assert "qpipe.stray" in proc.stdout, proc.stdout
