"""A progress bar on stderr, for runs longer than about a second, on terminals only."""

from __future__ import annotations

import anyio
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from airfleet.events import CallFinished, Event
from airfleet.results import Outcome

__all__ = ["ProgressListener"]

SHOW_AFTER_S = 1.0


class _RateColumn(ProgressColumn):
    """Calls finished per second."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"{speed:,.0f} calls/s" if speed else "", style="cyan")


class ProgressListener:
    """Counts finished calls; ``run()`` shows a bar once the run outlives a second."""

    def __init__(self, console: Console, *, total: int, operation: str) -> None:
        self._console = console
        self._total = total
        self._operation = operation
        self._ok = 0
        self._failed = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, event: Event) -> None:
        if not isinstance(event, CallFinished):
            return
        if event.result.outcome is Outcome.OK:
            self._ok += 1
        else:
            self._failed += 1
        self._update()

    def _update(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, completed=self._ok + self._failed, ok=self._ok, failed=self._failed
            )

    async def run(self) -> None:
        # Never in pipes or logs: only when stderr is a terminal.
        if not self._console.is_terminal:
            return
        await anyio.sleep(SHOW_AFTER_S)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"),
            _RateColumn(),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
        )
        self._task = self._progress.add_task(
            self._operation, total=self._total, ok=self._ok, failed=self._failed
        )
        self._progress.start()
        self._update()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
