"""The ``lean-async`` command line: one module per command, ``lean_async.cli`` the entry;
``errors`` (the program's name, exit statuses and error classes), ``args`` (shared flags),
``formats`` (the sweep's output formats), ``output`` (writing them), ``report`` (progress
and summaries) and ``signals`` (running a command, SIGINT/SIGTERM as a clean stop)."""
