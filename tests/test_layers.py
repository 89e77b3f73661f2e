"""The layer rules of ARCHITECTURE.md, checked on the source: who may import whom.

Every ``import`` in the package (also those inside functions, which is where the lazy imports
are) is read with ``ast``; a module's layer is its first folder under ``memtsm/`` (or the module
itself for top-level modules). A rule names, per layer, the memtsm modules it may import; a new
dependency that breaks the data flow fails here with the file and line.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "memtsm"

#: layer -> memtsm modules (prefixes) it may import, besides itself.
ALLOWED = {
    "constants": (),
    "segments": (),
    "runtime": ("memtsm.constants",),
    # the model is standalone: torch, the standard library and the stdlib-only config reader
    "model": ("memtsm.runtime.configs",),
    # extraction never imports the model, training, scoring or evaluation
    # int8 calibration renders its frames with the synthetic generator
    "extract": ("memtsm.constants", "memtsm.runtime", "memtsm.synth"),
    "train": ("memtsm.constants", "memtsm.runtime", "memtsm.extract", "memtsm.model",
              "memtsm.segments", "memtsm.evaluate.metrics"),
    "score": ("memtsm.constants", "memtsm.runtime", "memtsm.extract", "memtsm.model",
              "memtsm.segments", "memtsm.train.checkpoint", "memtsm.train.data"),
    "evaluate": ("memtsm.constants", "memtsm.runtime", "memtsm.extract", "memtsm.segments",
                 "memtsm.score", "memtsm.train.checkpoint"),
    # live streams reuse extraction and scoring; nothing but the CLI imports them
    "watch": ("memtsm.constants", "memtsm.runtime", "memtsm.extract", "memtsm.score",
              "memtsm.train.checkpoint"),
    # the generator draws frames and writes class names from constants; it knows no extraction
    "synth": ("memtsm.constants", "memtsm.runtime"),
    # a benchmark imports, trains and evaluates: it composes those three owners
    "benchmark": ("memtsm.constants", "memtsm.runtime", "memtsm.extract", "memtsm.train",
                  "memtsm.evaluate"),
    "demo": ("memtsm.constants", "memtsm.runtime", "memtsm.extract", "memtsm.train",
             "memtsm.evaluate", "memtsm.score", "memtsm.synth"),
    "cli": ("memtsm",),
    "__init__": ("memtsm.score.video",),
    "__main__": ("memtsm.cli",),
}
#: evaluate.metrics is what training may use of evaluation, so it must stay a leaf.
LEAVES = {"memtsm.evaluate.metrics": ("memtsm.segments",)}
#: the command line only maps flags onto library calls: no array or tensor code of its own.
CLI_FORBIDDEN = ("numpy", "torch", "h5py", "sklearn", "av", "nvidia")


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def imports_of(path: Path, root: Path = PACKAGE.parent) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name.removesuffix(".__init__") if path.name == "__init__.py" \
        else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


SOURCES = sorted(PACKAGE.rglob("*.py"))


def violations(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """The imports of ``path`` that its layer's rule does not allow."""
    module = module_name(path, root)
    layer = layer_of(module)
    assert layer in ALLOWED, f"{module}: no layer rule for {layer!r} (add it to ARCHITECTURE.md)"
    allowed = LEAVES.get(module, ALLOWED[layer] + (f"memtsm.{layer}",))
    return [f"{path}:{line}: {layer} imports {name}"
            for line, name in imports_of(path, root)
            if name.startswith("memtsm") and name != module
            and not (name == "memtsm" and layer != "model")  # the version
            and not any(name == a or name.startswith(a + ".") for a in allowed)]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layer_rules(path: Path) -> None:
    bad = violations(path)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", sorted((PACKAGE / "model").rglob("*.py")),
                         ids=lambda p: p.name)
def test_model_imports_only_torch_and_the_standard_library(path: Path) -> None:
    third_party = {name.split(".")[0] for _, name in imports_of(path)
                   if name and not name.startswith("memtsm")} - set(sys.stdlib_module_names)
    assert third_party <= {"torch"}, f"{path}: imports {sorted(third_party - {'torch'})}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").rglob("*.py")), ids=lambda p: p.name)
def test_cli_holds_no_array_code(path: Path) -> None:
    bad = [f"{path}:{line}: {name}" for line, name in imports_of(path)
           if name.split(".")[0] in CLI_FORBIDDEN]
    assert not bad, "the CLI maps flags onto library calls only:\n" + "\n".join(bad)


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """A forbidden import is seen, also inside a function and as a relative import."""
    fake = tmp_path / "memtsm" / "extract" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("import numpy\n\ndef f():\n    from memtsm.train.loop import train\n"
                    "    from ..score import video\n    from .store import FeatureStore\n")
    bad = violations(fake, tmp_path)
    assert [line.split(": ", 1)[1] for line in bad] == [
        "extract imports memtsm.train.loop", "extract imports memtsm.score"]
