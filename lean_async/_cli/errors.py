"""The command line's name, its exit statuses, and the errors a command stops with."""

from __future__ import annotations

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_OUTPUT_FAILED", "PROG", "CommandError", "UsageError"]

PROG = "lean-async"
# Exit statuses besides 0 (success), 1 (some customers or a call failed), 2 (usage error)
# and 128 + N (stopped by signal N).
EXIT_OUTPUT_FAILED = 3
# The reader of stdout went away (`| head`): what a shell shows for death by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + 13


class CommandError(Exception):
    """A command failed in a way worth one line on stderr, not a traceback."""

    exit_status = 1


class UsageError(CommandError):
    """The command line or its input cannot be used as given."""

    exit_status = 2
