"""What a backfill counts (`Tally`, per source and method) and how it shows it (`Progress`, on stderr).

The spiders and the store pipeline of a backfill add to one shared `Tally`; each change
refreshes the `Progress` bar, at most every `min_interval` seconds:

    backfill [##########----------]  40/80 fetched · 12 out of range · 3 already stored · ETA 0:01:10

On a terminal the bar is redrawn in place (carriage return); otherwise (a log file, a pipe)
a plain line is written every `plain_interval` seconds and at the end. No dependency: tqdm
is not installed and a bar this small does not need it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO

__all__ = ["COUNTS", "Progress", "Tally"]

# the counters of one (source, method), in the order the summary shows them
COUNTS = (
    "discovered",        # distinct article URLs the method found
    "in_range",          # ... whose listing date is in the window, or unknown (the page decides)
    "out_of_range",      # ... outside the window: by the listing's date (not fetched) or the page's
    "already_stored",    # ... already in the store (daily crawls, earlier backfills): not fetched
    "requested",         # article requests made (in --plan mode: what would be fetched)
    "fetched",           # article pages stored (any outcome)
    "flagged",           # ... that the rules flagged and queued
    "errors",            # failed discovery documents and failed article fetches
    "extracted",         # article pages stored with an extracted text
)
_BAR = 20


def _eta(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds + 0.5)))


class Progress:
    """A one-line progress bar with counts and an ETA on `stream` (stderr by default)."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        tty: bool | None = None,
        min_interval: float = 0.2,
        plain_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = tty if tty is not None else bool(isatty and isatty())
        self.min_interval = min_interval
        self.plain_interval = plain_interval
        self.clock = clock
        self.started = clock()
        self._shown_at: float | None = None
        self._last = ""
        self._width = 0

    def line(self, done: int, total: int, counts: dict[str, int]) -> str:
        """The text of the bar for `done` of `total` article pages and the other `counts`."""
        total = max(total, done)
        filled = int(_BAR * done / total) if total else 0
        parts = [f"backfill [{'#' * filled}{'-' * (_BAR - filled)}] {done:>3}/{total} fetched"]
        for key, label in (("out_of_range", "out of range"), ("already_stored", "already stored"),
                           ("flagged", "flagged"), ("errors", "errors")):
            if counts.get(key):
                parts.append(f"{counts[key]} {label}")
        elapsed = self.clock() - self.started
        if 0 < done < total and elapsed > 0:
            parts.append(f"ETA {_eta((total - done) * elapsed / done)}")
        elif total and done >= total:
            parts.append(f"in {_eta(elapsed)}")
        return " · ".join(parts)

    def update(self, done: int, total: int, counts: dict[str, int], *, force: bool = False) -> None:
        now = self.clock()
        interval = self.min_interval if self.tty else self.plain_interval
        if not force and self._shown_at is not None and now - self._shown_at < interval:
            return
        text = self.line(done, total, counts)
        if text == self._last and not force:
            return
        self._shown_at, self._last = now, text
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self, done: int, total: int, counts: dict[str, int]) -> None:
        """The final state, then a new line on a terminal."""
        self.update(done, total, counts, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Tally:
    """Counters per (source id, method) shared by every crawler of one backfill."""

    progress: Progress | None = None
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def add(self, source_id: str, method: str, key: str, n: int = 1) -> None:
        if key not in COUNTS:
            raise ValueError(f"unknown backfill counter {key!r}; use one of: {', '.join(COUNTS)}")
        row = self.counts.setdefault((source_id, method), dict.fromkeys(COUNTS, 0))
        row[key] += n
        if self.progress is not None and key in ("requested", "fetched", "out_of_range", "errors"):
            self.progress.update(self.total("fetched"), self.total("requested"), self.totals())

    def get(self, source_id: str, method: str, key: str) -> int:
        return self.counts.get((source_id, method), {}).get(key, 0)

    def total(self, key: str) -> int:
        return sum(row.get(key, 0) for row in self.counts.values())

    def totals(self, keys: Iterable[str] = COUNTS) -> dict[str, int]:
        return {key: self.total(key) for key in keys}

    def rows(self) -> list[tuple[str, str, dict[str, int]]]:
        """(source id, method, counters), sorted by source then method."""
        return [(sid, method, dict(row)) for (sid, method), row in sorted(self.counts.items())]

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close(self.total("fetched"), self.total("requested"), self.totals())
