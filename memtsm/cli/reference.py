"""Each command's synopsis, rendered from the typer app itself: one source for README and --help.

``memtsm extract INPUT... --out DIR [--decoder auto|pyav|dali|frames] [--clip-len 16] ...``:
arguments, then required options, then the others, each option with its choices (the default
listed first), else its default, else its metavar; flags bare, repeatable options as
``--features DIR [--features DIR ...]``. Lines wrap at :data:`WIDTH` with a 4-space indent.

``python -m memtsm.cli.reference`` prints every block; ``--update README.md`` rewrites the
fenced synopsis blocks of its "## Commands" section in place (nothing else is touched).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperArgument, TyperOption

from memtsm.cli.options import Command, argument_usage

WIDTH = 100
INDENT = "    "
SECTION = "## Commands"
#: A fenced bash block whose first line starts with ``memtsm <command>``.
BLOCK = re.compile(r"```bash\n(memtsm [^\n]*(?:\n    [^\n]*)*)\n```")


def commands(app: typer.Typer | None = None) -> Iterator[tuple[str, Command]]:
    """``("extract", command)``, ``("features info", command)``, ... in help order."""
    if app is None:
        from memtsm.cli import app
    group = typer.main.get_command(app)

    def walk(prefix: str, node: Any) -> Iterator[tuple[str, Command]]:
        for name, command in node.commands.items():
            path = f"{prefix} {name}".strip()
            if isinstance(command, Command):
                yield path, command
            else:
                yield from walk(path, command)

    yield from walk("", group)


def _value(option: TyperOption, command: Command) -> str:
    choices = (command.choices or {}).get(option.name or "")
    if choices:
        default = option.default
        return "|".join(([default] if default in choices else [])
                        + [c for c in choices if c != default])
    if option.default is not None and not isinstance(option.show_default, str):
        return str(option.default)
    return option.metavar or (option.name or "").upper()


def _option_usage(option: TyperOption, command: Command) -> str:
    name = max(option.opts, key=len)
    if option.is_flag:
        return f"[{name}]"
    word = f"{name} {_value(option, command)}"
    if option.multiple:
        return f"{word} [{word} ...]" if option.required else f"[{word} ...]"
    return word if option.required else f"[{word}]"


def synopsis_words(path: str, command: Command) -> list[str]:
    """The pieces of a synopsis, each kept on one line."""
    command.resolve_library()
    params = [p for p in command.params if p.name != "help"]
    words = [f"memtsm {path}"]
    words += [argument_usage(p) for p in params if isinstance(p, TyperArgument)]
    options = [p for p in params if isinstance(p, TyperOption)]
    words += [_option_usage(p, command) for p in options if p.required]
    words += [_option_usage(p, command) for p in options if not p.required]
    return words


def synopsis(path: str, command: Command, width: int = WIDTH) -> str:
    """The synopsis of one command, wrapped to ``width`` columns."""
    lines = [""]
    for word in synopsis_words(path, command):
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(INDENT)
        lines[-1] += word if lines[-1] in ("", INDENT) else " " + word
    return "\n".join(lines)


def synopses(app: typer.Typer | None = None) -> dict[str, str]:
    """Command path -> synopsis, for every command."""
    return {path: synopsis(path, command) for path, command in commands(app)}


def readme_blocks(text: str) -> dict[str, str]:
    """Command path -> the synopsis in its fenced block under "## Commands" of a README."""
    section = _commands_section(text)
    found = {}
    paths = sorted(synopses(), key=len, reverse=True)  # "features info" before "features"
    for match in BLOCK.finditer(section):
        block = match[1]
        path = next((p for p in paths if re.match(rf"memtsm {re.escape(p)}\b", block)), None)
        if path is not None:
            found[path] = block
    return found


def update_readme(text: str) -> str:
    """``text`` with every synopsis block under "## Commands" regenerated."""
    section = _commands_section(text)
    rendered = synopses()
    blocks = readme_blocks(text)
    updated = section
    for path, block in blocks.items():
        updated = updated.replace(f"```bash\n{block}\n```", f"```bash\n{rendered[path]}\n```")
    return text.replace(section, updated)


def _commands_section(text: str) -> str:
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start:] if end < 0 else text[start:end]


def main(argv: list[str] | None = None) -> None:
    """Print every synopsis as a fenced block, or ``--update README.md`` in place."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--update"] and len(args) == 2:
        path = Path(args[1])
        path.write_text(update_readme(path.read_text(encoding="utf-8")), encoding="utf-8")
        return
    if args:
        raise SystemExit("usage: python -m memtsm.cli.reference [--update README.md]")
    for path, text in synopses().items():
        print(f"`memtsm {path}`:\n\n```bash\n{text}\n```\n")


if __name__ == "__main__":
    main()
