"""README synopses are rendered from the typer app (`python -m memtsm.cli.reference`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtsm.cli.reference import readme_blocks, synopses, update_readme

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def blocks():
    return readme_blocks(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", sorted(synopses()))
def test_readme_block_is_the_rendered_synopsis(path, blocks):
    assert path in blocks, f"README.md: no ```bash block for memtsm {path} under ## Commands"
    assert blocks[path] == synopses()[path], (
        "regenerate with: python -m memtsm.cli.reference --update README.md")


def test_synopsis_shows_choices_defaults_and_the_options_the_readme_missed():
    text = synopses()
    assert text["extract"].startswith("memtsm extract INPUT... --out DIR "
                                      "[--decoder auto|pyav|dali|frames]")
    assert "[--clip-len 16]" in text["extract"] and "[--layout max128|" in text["extract"]
    for option in ("--decoder", "--device", "--xfeat-weights", "--fps"):
        assert f"[{option} " in text["score"]
    for option in ("--segments", "--ucsd-names"):
        assert f"[{option} " in text["evaluate"]
    assert "--features DIR [--features DIR ...]" in text["train"]
    assert all(len(line) <= 100 for block in text.values() for line in block.splitlines())


def test_update_rewrites_only_the_blocks():
    text = README.read_text(encoding="utf-8")
    stale = text.replace("[--clip-len 16]", "[--clip-len 8]", 1)
    assert update_readme(stale) == update_readme(text)
    assert update_readme(text) == text
