"""How to run this command again from the user's shell, for the hints it prints: plain
``lean-async`` only when that name on PATH is this program."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

from .errors import PROG

__all__ = ["command"]


def command() -> str:
    """The shell words that run this CLI from the current directory: ``lean-async`` when
    PATH finds this very script, else the script's path (``.venv/bin/lean-async`` after
    ``make demo``), or ``python -m lean_async`` with the running interpreter."""
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) in ("__main__.py", "cli.py"):  # python -m lean_async[.cli]
        return f"{_runnable(sys.executable)} -m lean_async"
    on_path = shutil.which(PROG)
    if on_path is not None and _same_file(on_path, script):
        return PROG
    if script and os.path.isfile(script):
        return _runnable(script)
    return PROG


def _runnable(path: str) -> str:
    """``path`` as a shell word that runs it: its name when PATH finds it there, else the
    shorter of its relative and absolute paths."""
    name = os.path.basename(path)
    found = shutil.which(name)
    if found is not None and _same_file(found, path):
        return shlex.quote(name)
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    if relative.startswith(os.pardir) or len(relative) > len(absolute):
        return shlex.quote(absolute)
    return shlex.quote(relative if os.sep in relative else os.path.join(os.curdir, relative))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
