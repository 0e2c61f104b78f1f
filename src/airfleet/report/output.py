"""Output files that are never left half-written (reports, frozen fleet files).

A report goes to a temporary file beside its destination and is renamed onto
it when the run ends (interrupted runs included): a crash, a second signal or
a CI timeout's ``kill -9`` leaves the last good report in place, and a
reader (a CI system, node_exporter) never sees half of one. The temporary
file is made before anything is sent, so an output that cannot be written is
a usage error (exit 2) with nothing sent.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from airfleet.errors import UsageError

__all__ = ["AtomicOutput", "output_to"]


class AtomicOutput:
    """``-o FILE``: written to ``.FILE.*.tmp`` beside it, renamed into place by :meth:`commit`."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        try:
            fd, temporary = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
            )
        except OSError as exc:
            raise UsageError(
                f"cannot write the report to {path}: {exc.strerror or exc}; "
                "check that its directory exists and is writable"
            ) from None
        self._temporary = Path(temporary)
        # mkstemp makes the file 0600; a report is as readable as any file
        # the user writes.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        self.file: TextIO = os.fdopen(fd, "w", encoding="utf-8")

    def commit(self) -> None:
        """Make what was written the report: flushed to disk, then renamed onto ``path``."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self._temporary, self.path)

    def discard(self) -> None:
        """Drop what was written; the report already at ``path`` stays as it was."""
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self._temporary.unlink()


@contextlib.contextmanager
def output_to(path: str | None) -> Iterator[TextIO]:
    """``-o FILE`` as an :class:`AtomicOutput` made now, committed when the block ends
    and discarded if it raises (an interruption included); stdout without a path."""
    if path is None:
        yield sys.stdout
        return
    target = AtomicOutput(path)
    try:
        yield target.file
    except BaseException:
        target.discard()
        raise
    target.commit()
