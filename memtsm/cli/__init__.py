"""The ``memtsm`` command line: one module per command, each mapping flags onto a library call.

=====================  ======================================  ================================
command                module                                  library
=====================  ======================================  ================================
``extract``            :mod:`memtsm.cli.extract`               :mod:`memtsm.extract.runner`
``features info``      :mod:`memtsm.cli.features`              :mod:`memtsm.extract.store`
``features verify``    :mod:`memtsm.cli.features`              :mod:`memtsm.extract.verify`
``import-features``    :mod:`memtsm.cli.import_features`       :mod:`memtsm.extract.external`
``train``              :mod:`memtsm.cli.train`                 :mod:`memtsm.train.loop`
``sweep``              :mod:`memtsm.cli.sweep`                 :mod:`memtsm.train.sweep`
``evaluate``           :mod:`memtsm.cli.evaluate`              :mod:`memtsm.evaluate.protocol`
``benchmark``          :mod:`memtsm.cli.benchmark`             :mod:`memtsm.benchmark.runner`
``score``              :mod:`memtsm.cli.score`                 :mod:`memtsm.score.video`
``export``             :mod:`memtsm.cli.export`                :mod:`memtsm.score.export`
``demo``               :mod:`memtsm.cli.demo`                  :mod:`memtsm.demo`
``watch``              :mod:`memtsm.cli.watch`                 :mod:`memtsm.watch.runner`
=====================  ======================================  ================================

What the commands share (option aliases, library defaults, exit codes, logging, progress) is in
:mod:`memtsm.cli.options`; :mod:`memtsm.cli.reference` renders each command's synopsis for the
README. Heavy modules (torch, kornia, h5py, DALI) are imported inside the commands, so
``memtsm --help`` stays fast. Library code raises exceptions; only the CLI turns them into exit
codes: 0 success, 1 some inputs failed (the rest were processed), 2 usage or set-up error,
130 interrupted (``watch``: 128 + the signal, 143 for SIGTERM).
"""

from __future__ import annotations

from typing import Annotated

import typer

import memtsm
from memtsm.cli import (
    benchmark,
    demo,
    evaluate,
    export,
    extract,
    features,
    import_features,
    score,
    sweep,
    train,
    watch,
)
from memtsm.cli.options import EXIT_OK, Group

app = typer.Typer(
    name="memtsm",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    help="Raw surveillance video to per-segment anomaly scores (XFeat features + MemTSM).",
)
features_app = typer.Typer(cls=Group, no_args_is_help=True, help="Inspect feature stores.")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"memtsm {memtsm.__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    """Raw surveillance video to per-segment anomaly scores (XFeat features + MemTSM)."""


app.command("extract", cls=extract.Command)(extract.extract)
app.add_typer(features_app, name="features")
features_app.command("info", cls=features.Command)(features.info)
features_app.command("verify", cls=features.Command)(features.verify)
app.command("import-features", cls=import_features.Command)(import_features.import_features)
app.command("train", cls=train.Command)(train.train)
app.command("sweep", cls=sweep.Command)(sweep.sweep)
app.command("evaluate", cls=evaluate.Command)(evaluate.evaluate)
app.command("benchmark", cls=benchmark.Command)(benchmark.benchmark)
app.command("score", cls=score.Command)(score.score)
app.command("export", cls=export.Command)(export.export)
app.command("demo", cls=demo.Command)(demo.demo)
app.command("watch", cls=watch.Command)(watch.watch)


def main() -> None:
    """Console-script entry point."""
    app()
