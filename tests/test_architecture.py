"""ARCHITECTURE.md stays true: the modules and names it points at exist, no folder is left out."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "memtsm"
TEXT = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
#: ``extract/runner.py``, ``extract/decode/``, ``segments.py`` ... as written in the document.
PATHS = sorted(set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+(?:\.py|/))`", TEXT)))


def defined_names(path: Path) -> set[str]:
    """Top-level functions, classes, assignments and imported names of a module (or package)."""
    files = [path] if path.is_file() else sorted(path.glob("*.py"))
    names: set[str] = set()
    for file in files:
        for node in ast.parse(file.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def ownership_rows() -> list[tuple[list[str], list[str]]]:
    """``(module paths, interface names)`` of each row of the "Who owns what" table."""
    section = TEXT.split("## Who owns what", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            rows.append((re.findall(r"`([a-z_/]+(?:\.py|/))`", cells[1]),
                         re.findall(r"`(\w+)`", cells[2])))
    return rows


@pytest.mark.parametrize("path", PATHS)
def test_every_named_path_exists(path):
    assert (PACKAGE / path).exists() or (ROOT / path).exists(), f"ARCHITECTURE.md: {path}"


def test_every_package_folder_is_described():
    folders = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders <= set(PATHS), sorted(folders - set(PATHS))


@pytest.mark.parametrize("modules, names", ownership_rows())
def test_every_interface_is_defined_by_its_owner(modules, names):
    defined = set().union(*(defined_names(PACKAGE / m) for m in modules))
    assert set(names) <= defined, (modules, sorted(set(names) - defined))


def test_the_table_has_a_row_per_step():
    assert len(ownership_rows()) >= 15
