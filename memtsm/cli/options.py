"""What every ``memtsm`` command shares: option aliases, the command class, errors, logging.

* **Option aliases.** An option that several commands take (``--device``, ``--quiet/-q``,
  ``--out/-o``...) is declared here once, as an ``Annotated[type, typer.Option(...)]`` alias:
  its flag names, metavar and help text. A command module only names the alias.
* **Defaults and choices come from the library.** No default value or choice list is written in
  the CLI: each command module has a ``library_defaults()`` (option name -> the default its
  library config or function defines) and a ``library_choices()`` (option name -> the library's
  tuple of accepted values). :class:`Command` fetches them when the command's help is shown or
  the command runs, so ``memtsm --help`` imports neither torch nor h5py even though most
  defaults live in modules that do. A default that is a description, not a value
  (``--steps-per-epoch``: one pass over the larger class) is a :class:`Described`.
* **Help without surprises.** :class:`Command` and :class:`Group` show flags without a
  ``<bool>`` value placeholder and arguments as ``INPUT...`` in the usage line.
* **Errors, exit codes, logging, progress** and :func:`parse_size`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Optional

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# -- option aliases (declared once, shared by the commands) ------------------------------------

Device = Annotated[Optional[str], typer.Option(
    "--device", metavar="DEVICE", help="auto | cpu | cuda | cuda:N.")]
Threads = Annotated[Optional[int], typer.Option(
    "--threads", metavar="N", help="CPU threads for torch's computations (else "
    "$OMP_NUM_THREADS, else the CPUs this process may use). Waiting threads sleep instead of "
    "spinning, so a machine shared with other work slows down gracefully.",
    show_default="the CPUs available")]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Only results, warnings and errors: no progress bar, info logs or "
    "tables.")]
XFeatWeights = Annotated[Optional[Path], typer.Option(
    "--xfeat-weights", metavar="FILE", help="XFeat weights file (else $MEMTSM_XFEAT_WEIGHTS, "
    "the cache, a download); the features of a store or checkpoint record which.")]
Decoder = Annotated[Optional[str], typer.Option(
    "--decoder", help="Video decoder; auto picks DALI when CUDA and DALI are usable, else "
    "PyAV. Folders of frame images are always read as images.")]
Engine = Annotated[Optional[str], typer.Option(
    "--engine", help="XFeat inference engine; auto picks OpenVINO on the CPU (else ONNX "
    "Runtime, else torch) and torch on CUDA. All give the same fp32 features.")]
FramesFps = Annotated[Optional[float], typer.Option(
    "--fps", help="Frame rate of folders of frame images.")]
Labels = Annotated[Optional[Path], typer.Option(
    "--labels", metavar="CSV", help="CSV 'video,label,class' (class optional) overriding the "
    "UCF-Crime path rule of labels.")]
FrameCounts = Annotated[Optional[Path], typer.Option(
    "--frame-counts", metavar="FILE", help="'Class/Name.mp4 n_frames ...' lines (UCF-Crime "
    "meta/*_Annotation.txt): the true frame count of each video.")]
Checkpoint = Annotated[Path, typer.Option(
    "--checkpoint", "-c", metavar="RUN_DIR/best.pt", help="A best.pt written by memtsm train.")]
TrainFeatures = Annotated[list[Path], typer.Option(
    "--features", "-f", metavar="DIR", help="Feature store(s) with labelled training videos "
    "(repeat the flag for more).")]
TestFeatures = Annotated[list[Path], typer.Option(
    "--features", "-f", metavar="DIR", help="Feature store(s) of the test videos (repeat the "
    "flag for more).")]
TrainYaml = Annotated[Optional[Path], typer.Option(
    "--config", metavar="YAML", help="YAML train config; flags given on the command line "
    "override it.")]
StoreOut = Annotated[Path, typer.Option(
    "--out", "-o", metavar="DIR", help="Feature store directory (created, or appended to).")]
RunOut = Annotated[Path, typer.Option(
    "--out", "-o", metavar="RUN_DIR", help="Run directory: config.yaml, metrics.jsonl, last.pt, "
    "best.pt, curves.png.")]
SweepOut = Annotated[Path, typer.Option(
    "--out", "-o", metavar="SWEEP_DIR", help="Sweep directory: runs/, sweep.csv, sweep.md, "
    "sweep.json.")]
DemoOut = Annotated[Optional[Path], typer.Option(
    "--out", "-o", metavar="DIR", help="Where everything goes.")]
Inputs = Annotated[list[Path], typer.Argument(
    metavar="INPUT", help="Video files, folders of videos (searched recursively) or folders of "
    "frame images.", show_default=False)]
StoreDir = Annotated[Path, typer.Argument(
    metavar="DIR", help="Feature store directory.", show_default=False)]


# -- defaults and choices read from the library --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Described:
    """A default that is a description (``one pass over the larger class``), not a value.

    The option's value stays ``None`` and the library decides; help shows
    ``[default: (description)]``.
    """

    text: str


def field_defaults(config_class: type) -> dict[str, Any]:
    """Default of every field of a dataclass that has one (``default_factory`` called)."""
    defaults = {}
    for field in dataclasses.fields(config_class):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return defaults


def signature_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """Default of every keyword of a function that has one."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


class _NoBoolPlaceholder:
    """Flags without a ``<bool>`` placeholder.

    typer 0.29's rich help prints every option's type, flags too (``--resume <bool>`` reads as
    taking a value). A flag takes no value: its metavar is made empty, so nothing is printed.
    """

    def get_params(self, ctx: typer.Context) -> list[Any]:  # noqa: D102
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if isinstance(param, TyperOption) and (param.is_flag or param.count) \
                    and param.metavar is None:
                param.metavar = ""
        return params


class Group(_NoBoolPlaceholder, TyperGroup):
    """``memtsm`` and ``memtsm features``."""


class Command(_NoBoolPlaceholder, TyperCommand):
    """Every memtsm command: library defaults and choices, usage ``INPUT...``, flags bare.

    Subclass it per command with :func:`command_class`; :meth:`resolve_library` runs before
    the arguments are parsed (so also before ``--help`` is printed).
    """

    library_defaults: ClassVar[Callable[[], Mapping[str, Any]]] = staticmethod(dict)
    library_choices: ClassVar[Callable[[], Mapping[str, Sequence[str]]]] = staticmethod(dict)
    choices: dict[str, tuple[str, ...]] | None = None
    """Option name -> accepted values, once :meth:`resolve_library` ran."""

    def resolve_library(self) -> None:
        """Give each option the default and choices its library defines (once)."""
        if self.choices is not None:
            return
        params = {p.name: p for p in self.params}
        defaults, choices = self.library_defaults(), self.library_choices()
        unknown = sorted((set(defaults) | set(choices)) - set(params))
        if unknown:
            raise RuntimeError(f"memtsm {self.name}: library defaults of unknown options {unknown}")
        for name, value in defaults.items():
            if isinstance(value, Described):
                params[name].show_default = value.text
            else:
                params[name].default = value
        for name, allowed in choices.items():
            params[name].metavar = "|".join(allowed)
        self.choices = {name: tuple(allowed) for name, allowed in choices.items()}

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # noqa: D102
        # Before the library defaults import torch: its OpenMP runtime reads the wait policy once.
        from memtsm.runtime.threads import prepare_openmp

        prepare_openmp()
        self.resolve_library()
        rest = super().parse_args(ctx, args)
        for param in self.params:
            allowed = (self.choices or {}).get(param.name or "")
            value = ctx.params.get(param.name or "")
            if allowed is not None and value is not None and value not in allowed:
                raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}",
                                         ctx=ctx, param=param)
        return rest

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        """``[OPTIONS] INPUT...`` (typer writes ``{inputs}...``)."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(argument_usage(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def command_class(defaults: Callable[[], Mapping[str, Any]] | None = None,
                  choices: Callable[[], Mapping[str, Sequence[str]]] | None = None,
                  ) -> type[Command]:
    """A :class:`Command` whose options take ``defaults()`` and ``choices()`` from the library."""
    attributes: dict[str, Any] = {}
    if defaults is not None:
        attributes["library_defaults"] = staticmethod(defaults)
    if choices is not None:
        attributes["library_choices"] = staticmethod(choices)
    return type("LibraryCommand", (Command,), attributes)


def argument_usage(param: TyperArgument) -> str:
    """``INPUT...``, ``DIR`` or ``[NAME]`` for one positional argument."""
    name = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


def given(ctx: typer.Context) -> dict[str, Any]:
    """The options given on the command line (or by an environment variable), with values.

    For commands where an unset flag must not override something else (a ``--config`` YAML).
    """
    return {name: value for name, value in ctx.params.items()
            if (source := ctx.get_parameter_source(name)) is not None
            and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")}


# -- errors, logging, progress -------------------------------------------------------------------


def use_threads(threads: int | None, reserve: int = 0) -> int:
    """:func:`memtsm.runtime.threads.configure_threads`; a bad thread count is a usage error."""
    from memtsm.runtime.threads import configure_threads

    try:
        return configure_threads(threads, reserve)
    except ValueError as exc:
        raise usage_error(str(exc)) from None


def usage_error(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; return the exit (code 2) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


class _StderrHandler(logging.StreamHandler):
    """A log handler that writes to the *current* ``sys.stderr``.

    Log lines written while a Rich progress bar is live so go through Rich's redirection and
    appear above the bar.
    """

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(quiet: bool) -> None:
    """INFO logs on stderr (WARNING with ``--quiet``)."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, handlers=[handler],
                        force=True)


class _BarsOnly:
    """The library's progress bars without their per-item lines.

    Every item already gets exactly one line elsewhere: the library's log (train epochs, sweep
    runs, extract failures) or the command's final summary (score and import failures). Printing
    the progress line too showed each epoch, and each failure, twice (issue item 16.7 / 16.11).
    """

    def __init__(self, bars: Any) -> None:
        self._bars = bars

    def start(self, total_items: int, total_units: int, unit: str) -> None:  # noqa: D102
        self._bars.start(total_items, total_units, unit)

    def advance(self, units: int) -> None:  # noqa: D102
        self._bars.advance(units)

    def item_done(self, name: str, ok: bool, info: str = "") -> None:
        """Advance the item bar (``ok`` and ``info`` only choose the line not printed here)."""
        self._bars.item_done(name, True)

    def close(self) -> None:  # noqa: D102
        self._bars.close()


def progress(quiet: bool, label: str = "videos") -> Any:
    """Progress bars on stderr (``label``: what is counted), nothing with ``--quiet``."""
    from memtsm.runtime.progress import RichProgress, SilentProgress

    return SilentProgress() if quiet else _BarsOnly(RichProgress(label))


# -- sizes ---------------------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
               "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30}


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"500MB"``, ``"1048576"`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match[2].lower() not in _SIZE_UNITS:
        raise typer.BadParameter(f"not a size: {text!r} (e.g. 1GiB, 500MB)")
    return int(float(match[1]) * _SIZE_UNITS[match[2].lower()])


def format_size(size: int) -> str:
    """Bytes -> the shortest exact :func:`parse_size` text (``1073741824`` -> ``"1GiB"``)."""
    for unit in ("GiB", "GB", "MiB", "MB", "KiB", "kB"):
        factor = _SIZE_UNITS[unit.lower()]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
