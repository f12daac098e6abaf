"""What ``sweep`` tells the user on stderr: a progress bar while it runs, a summary at the
end. Only counts and error kinds: never a payment source's data."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections import Counter
from typing import Any, TextIO

from .._constants import LOGGER_NAME
from .._observe import RetryEvent
from .._sweep import SweepProgress
from .errors import PROG
from .output import Written

__all__ = [
    "ProgressBar",
    "RetryNotices",
    "RetryTally",
    "configure_logging",
    "postfix",
    "say",
    "summary",
]

_BAR_INTERVAL = 0.2  # seconds between redraws


class ProgressBar:
    """Progress on stderr when it is a terminal: a tqdm bar with the ``cli`` extra, else a
    plain status line. Cleared at the end, so that the summary is the one final account
    (a bar left behind shows its own elapsed time and counts from its last redraw)."""

    def __init__(self, *, enabled: bool, stream: TextIO | None = None) -> None:
        self._stream = stream = stream or sys.stderr
        self._bar: Any = None
        self._plain = False
        self._total: int | None = None
        self._progress: SweepProgress | None = None
        self._redrawn = 0.0
        if not enabled or not stream.isatty():
            return
        try:
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            self._plain = True
        else:
            self._bar = tqdm(
                unit=" customers",
                file=stream,
                dynamic_ncols=True,
                mininterval=_BAR_INTERVAL,
                smoothing=0.05,
                leave=False,
            )
        global _shown_bar
        _shown_bar = self

    @property
    def shown(self) -> bool:
        return self._bar is not None or self._plain

    def set_total(self, total: int) -> None:
        self._total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def advance(self, progress: SweepProgress) -> None:
        if not self.shown:
            return
        self._progress = progress
        bar = self._bar
        if bar is not None:
            bar.update(1)
        now = time.monotonic()
        if now - self._redrawn >= _BAR_INTERVAL:
            self._redrawn = now
            if bar is not None:
                bar.set_postfix_str(postfix(progress), refresh=False)
            else:
                self._draw_status()

    def _draw_status(self) -> None:
        progress = self._progress
        if progress is None:
            return
        of = f"/{self._total:,}" if self._total is not None else ""
        status = f"{progress.done:,}{of} customers, {postfix(progress)}, {progress.rate:,.0f}/s"
        # Within one row: a wrapped line could not be redrawn in place.
        try:
            width = os.get_terminal_size(self._stream.fileno()).columns - 1
        except (OSError, ValueError):
            width = 79
        self._stream.write(f"\r{status[:width]}{_CLEAR_TO_END}")
        self._stream.flush()

    def write(self, line: str) -> None:
        """``line`` on its own line above the progress, which is then drawn again."""
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
            return
        self._stream.write(f"\r{_CLEAR_TO_END}{line}\n" if self._plain else f"{line}\n")
        if self._plain:
            self._draw_status()
        self._stream.flush()

    def close(self) -> None:
        global _shown_bar
        if _shown_bar is self:
            _shown_bar = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._plain:
            self._plain = False
            self._stream.write(f"\r{_CLEAR_TO_END}")
            self._stream.flush()


_CLEAR_TO_END = "\x1b[K"
# The progress on screen, which other lines must be written around.
_shown_bar: ProgressBar | None = None


def say(line: str) -> None:
    """One line on stderr, around the progress bar if one is shown."""
    bar = _shown_bar
    if bar is not None:
        bar.write(line)
    else:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


class RetryNotices(logging.Handler):
    """Without ``-v``: one line on stderr per retry of the client (the first
    ``_MAX_NOTICES`` of a run, then a note that the summary counts the rest), and the
    library's warnings."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._shown = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and getattr(record, "retry_cause", None) is None:
            return
        if record.levelno < logging.WARNING:
            self._shown += 1
            if self._shown > _MAX_NOTICES + 1:
                return
            if self._shown > _MAX_NOTICES:
                say(f"{PROG}: more retries follow; the summary counts them (-v shows each)")
                return
        say(f"{PROG}: {record.getMessage()}")


_MAX_NOTICES = 10


def postfix(progress: SweepProgress) -> str:
    """The bar's tail: failures, sources, and what the client's rate control allows now."""
    pace = "unpaced" if progress.paced_rate is None else f"paced {progress.paced_rate:.0f}/s"
    return (
        f"{progress.failed} failed, {progress.sources} sources, {pace}, "
        f"{progress.concurrency} in flight max"
    )


class RetryTally:
    """Counts the client's retries by cause: the client's ``on_retry`` hook."""

    def __init__(self) -> None:
        self.causes: Counter[str] = Counter()

    def __call__(self, event: RetryEvent) -> None:
        self.causes[event.cause] += 1


class _Said(logging.Handler):
    """Log records as lines on stderr, written around the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        say(self.format(record))


def configure_logging(verbosity: int) -> None:
    """A line per retry of the client on stderr (and warnings); ``-v``: with timestamps,
    token refreshes too; ``-vv``: every request. Replaces what an earlier call set up."""
    logger = logging.getLogger(LOGGER_NAME)
    for earlier in [h for h in logger.handlers if isinstance(h, (_Said, RetryNotices))]:
        logger.removeHandler(earlier)
    if verbosity <= 0:
        logger.addHandler(RetryNotices())
        logger.setLevel(logging.INFO)
        return
    handler = _Said()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in counter.most_common())


def summary(
    progress: SweepProgress,
    retries: Counter[str],
    *,
    output: str,
    earlier: Written | None = None,
    finished: bool = True,
) -> str:
    """The end-of-run report: customers, sources, failures by error, retries, time, rate."""
    lines = [progress.summary()]
    if progress.errors:
        lines.append(f"failed: {_counts(progress.errors)}")
    if retries or progress.rate_limited:
        retried = f"retried: {sum(retries.values())} requests"
        if retries:
            retried += f" ({_counts(retries)})"
        if progress.rate_limited:
            retried += f"; {progress.rate_limited} answers of 429 (customers requeued)"
        lines.append(retried)
    if earlier is not None and earlier.records:
        lines.append(
            f"skipped: {len(earlier.done)} customers already in {output} "
            f"({earlier.failed} of them failed)"
        )
    if not finished:
        again = "; run the same command with --resume to continue" if output != "stdout" else ""
        lines.append(f"stopped before the end of the input{again}")
    return "\n".join(lines) + "\n"
