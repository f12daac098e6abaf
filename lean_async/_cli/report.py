"""What ``sweep`` tells the user on stderr: a progress bar while it runs, a summary at the
end. Only counts and error kinds: never a payment source's data."""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections import Counter
from types import TracebackType
from typing import Any, TextIO

from .._constants import LOGGER_NAME
from .._sweep import SweepProgress
from .output import Written

__all__ = ["ProgressBar", "RetryTally", "configure_logging", "postfix", "summary"]

_BAR_INTERVAL = 0.2  # seconds between redraws


class ProgressBar:
    """A tqdm bar on stderr when it is a terminal and tqdm is installed (the ``cli`` extra);
    otherwise nothing."""

    def __init__(self, *, enabled: bool, stream: TextIO | None = None) -> None:
        stream = stream or sys.stderr
        self._bar: Any = None
        self._redrawn = 0.0
        if not enabled or not stream.isatty():
            return
        try:
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            return
        self._bar = tqdm(
            unit=" customers",
            file=stream,
            dynamic_ncols=True,
            mininterval=_BAR_INTERVAL,
            smoothing=0.05,
        )

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def set_total(self, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def advance(self, progress: SweepProgress) -> None:
        bar = self._bar
        if bar is None:
            return
        bar.update(1)
        now = time.monotonic()
        if now - self._redrawn >= _BAR_INTERVAL:
            self._redrawn = now
            bar.set_postfix_str(postfix(progress), refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def postfix(progress: SweepProgress) -> str:
    """The bar's tail: failures, sources, and what the client's rate control allows now."""
    pace = "unpaced" if progress.paced_rate is None else f"paced {progress.paced_rate:.0f}/s"
    return (
        f"{progress.failed} failed, {progress.sources} sources, {pace}, "
        f"{progress.concurrency} in flight max"
    )


class RetryTally(logging.Handler):
    """Counts the client's retries by cause, from the ``retry_cause`` of its "retrying ..."
    log records. Installed on the ``lean_async`` logger while in use."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.causes: Counter[str] = Counter()
        self._logger = logging.getLogger(LOGGER_NAME)
        self._level = self._logger.level

    def emit(self, record: logging.LogRecord) -> None:
        cause = getattr(record, "retry_cause", None)
        if cause is not None:
            self.causes[str(cause)] += 1

    def __enter__(self) -> RetryTally:
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            logger.setLevel(logging.INFO)
        logger.addHandler(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


def configure_logging(verbosity: int) -> None:
    """``-v``: the client's retries and token refreshes on stderr; ``-vv``: every request."""
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
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
