"""`--help` of every command is honest: no `<bool>`, `INPUT...`, library defaults, help texts."""

from __future__ import annotations

import re

import pytest
from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner

import memtsm
from memtsm.cli import app
from memtsm.cli.options import Described
from memtsm.cli.reference import commands

COMMANDS = dict(commands())
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def help_of(path: str) -> str:
    result = CliRunner().invoke(app, [*path.split(), "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", ["", "features", *COMMANDS])
def test_no_flag_shows_a_bool_placeholder(path):
    assert "<bool>" not in help_of(path)


@pytest.mark.parametrize("path, usage", [
    ("extract", "memtsm extract [OPTIONS] INPUT..."),
    ("import-features", "memtsm import-features [OPTIONS] INPUT..."),
    ("score", "memtsm score [OPTIONS] VIDEO..."),
    ("features info", "memtsm features info [OPTIONS] DIR"),
    ("features verify", "memtsm features verify [OPTIONS] DIR"),
])
def test_usage_line_names_the_arguments(path, usage):
    text = help_of(path)
    assert usage in text
    assert "{" not in text.split("Usage:")[1].splitlines()[0]


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"memtsm {memtsm.__version__}\n"


@pytest.mark.parametrize("path", COMMANDS)
def test_every_option_has_help_text_without_brackets(path):
    command = COMMANDS[path]
    for param in command.params:
        if isinstance(param, (TyperOption, TyperArgument)):
            assert param.help, f"memtsm {path} {param.name}: no help text"
            # "[20]" inside the help was the old default style; rich also eats "[auto]"
            assert "[" not in param.help, f"memtsm {path} {param.name}: {param.help!r}"


def test_evaluate_quiet_is_documented():
    assert re.search(r"--quiet\s+-q\s+Only results", help_of("evaluate"))


@pytest.mark.parametrize("path", COMMANDS)
def test_defaults_are_the_librarys_shown_as_default(path):
    command = COMMANDS[path]
    command.resolve_library()
    text = help_of(path)
    params = {p.name: p for p in command.params}
    for name, value in command.library_defaults().items():
        shown = f"({value.text})" if isinstance(value, Described) else str(value)
        assert params[name].default == (None if isinstance(value, Described) else value)
        assert f"[default: {shown}]" in text, (path, name)


def test_train_defaults_come_from_train_config():
    from memtsm.train.config import DEFAULT_EPOCHS, ScorerOptions
    from memtsm.train.recipes import RECIPES

    text = " ".join(help_of("train").split())
    assert re.search(rf"--epochs .*\[default: {DEFAULT_EPOCHS}\]", text)
    lr = ", ".join(f"{model} {recipe.lr}" for model, recipe in RECIPES.items())
    assert f"[default: (the model's recipe: {lr})]" in text
    assert re.search(rf"--channels .*\[default: {ScorerOptions().channels}\]", text)
    assert "[default: (the model's recipe for the data size)]" in text


def test_choices_come_from_the_library_and_are_checked(tmp_path):
    from memtsm.evaluate.annotations import ANNOTATION_FORMATS
    from memtsm.extract.config import LAYOUT_NAMES
    from memtsm.extract.external import FEATURE_FORMATS

    assert "|".join(LAYOUT_NAMES) in help_of("extract")
    assert "|".join(FEATURE_FORMATS) in help_of("import-features")
    assert "|".join(ANNOTATION_FORMATS) in help_of("evaluate")
    result = CliRunner().invoke(app, ["extract", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--layout", "max64"])
    assert result.exit_code == 2
    assert "'max64' is not one of max128, mean128, pyramid640" in result.output
    assert not (tmp_path / "o").exists()
