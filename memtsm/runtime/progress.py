"""Progress reporting: a tiny protocol, a silent implementation and a rich one."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What long-running library functions report to; the CLI decides how to show it."""

    def start(self, total_items: int, total_units: int, unit: str) -> None:
        """Begin: ``total_items`` videos (or epochs), about ``total_units`` frames (or steps)."""

    def advance(self, units: int) -> None:
        """``units`` more frames (steps) done."""

    def item_done(self, name: str, ok: bool, info: str = "") -> None:
        """One video (epoch) finished; ``info`` is a short status line."""

    def close(self) -> None:
        """Finish the display."""


class SilentProgress:
    """Reports nothing (``--quiet`` and library use)."""

    def start(self, total_items: int, total_units: int, unit: str) -> None:  # noqa: D102
        pass

    def advance(self, units: int) -> None:  # noqa: D102
        pass

    def item_done(self, name: str, ok: bool, info: str = "") -> None:  # noqa: D102
        pass

    def close(self) -> None:  # noqa: D102
        pass


class RichProgress:
    """Two bars on stderr: items (videos/s, ETA) and units (frames/s)."""

    def __init__(self, item_label: str = "videos") -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self._console, transient=False)
        self._item_label = item_label
        self._items = self._units = None

    def start(self, total_items: int, total_units: int, unit: str) -> None:  # noqa: D102
        self._unit = unit
        self._bar.start()
        self._items = self._bar.add_task(self._item_label, total=total_items, rate="")
        self._units = self._bar.add_task(unit, total=max(total_units, 1), rate="")

    def _rate(self, task_id: int, unit: str) -> str:
        task = self._bar.tasks[task_id]
        speed = task.finished_speed or task.speed
        return f"{speed:,.1f} {unit}/s" if speed else ""

    def advance(self, units: int) -> None:
        """Count ``units`` more; the total grows when a header under-declared the frames."""
        task = self._bar.tasks[self._units]
        if task.total is not None and task.completed + units > task.total:
            self._bar.update(self._units, total=task.completed + units)
        self._bar.update(self._units, advance=units)
        self._bar.update(self._units, rate=self._rate(self._units, self._unit))

    def item_done(self, name: str, ok: bool, info: str = "") -> None:  # noqa: D102
        self._bar.update(self._items, advance=1)
        self._bar.update(self._items, rate=self._rate(self._items, self._item_label))
        if not ok:
            self._console.print(f"[red]failed[/red] {name}: {info}")
        elif info:
            self._console.print(f"{name}: {info}")

    def close(self) -> None:  # noqa: D102
        self._bar.stop()
