"""Running the ``lean-async`` command line as a user does: a subprocess, against a fake
server the test runs in its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import signal
import struct
import sys
import termios
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from lean_async import PaymentSource
from lean_async.testing import FakeLean

CLI = (sys.executable, "-m", "lean_async.cli")
TIMEOUT = 30.0


@dataclass
class Ran:
    status: int
    stdout: str
    stderr: str


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any LEAN_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAN_")}
    env.update(extra)
    return env


def app_token_env(server: FakeLean) -> dict[str, str]:
    return clean_env(LEAN_APP_TOKEN=server.app_token)


async def start_cli(
    *args: str,
    env: Mapping[str, str],
    stdin: int = asyncio.subprocess.DEVNULL,
    cwd: Path | None = None,
    command: Sequence[str] = CLI,
) -> asyncio.subprocess.Process:
    """Start the CLI with stdout and stderr piped; the caller must ``stop`` it."""
    return await asyncio.create_subprocess_exec(
        *command,
        *args,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
    )


async def run_cli(
    *args: str,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    cwd: Path | None = None,
    command: Sequence[str] = CLI,
    timeout: float = TIMEOUT,
) -> Ran:
    """Run the CLI to its end (killed after ``timeout``)."""
    proc = await start_cli(
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        cwd=cwd,
        command=command,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    finally:
        await stop(proc)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


async def read_until(proc: asyncio.subprocess.Process, last: str) -> list[str]:
    """Lines of ``proc``'s stdout up to the first that starts with ``last`` (e.g. the end
    of what ``mock`` announces)."""
    assert proc.stdout is not None
    lines: list[str] = []
    for _ in range(100):
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line, "the command exited early"
        lines.append(line.rstrip("\n"))
        if line.startswith(last):
            return lines
    raise AssertionError(f"no line starting with {last!r} in {lines}")


async def wait_for_lines(path: Path, count: int, timeout: float = 10.0) -> None:
    """Wait until the file at ``path`` has at least ``count`` lines."""
    for _ in range(int(timeout / 0.01)):
        if _line_count(path) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} did not reach {count} lines in {timeout} s")


async def kill_after_lines(*args: str, env: Mapping[str, str], output: Path, lines: int) -> int:
    """Start the CLI, SIGKILL it once ``output`` has ``lines`` lines; how many it had then."""
    proc = await start_cli(*args, env=env)
    try:
        await wait_for_lines(output, lines)
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        await stop(proc)
    return _line_count(output)


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc`` if it still runs, and reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def run_cli_on_terminal(
    *args: str,
    env: Mapping[str, str],
    command: Sequence[str] = CLI,
    timeout: float = TIMEOUT,
) -> Ran:
    """Run the CLI with stderr on a pseudo-terminal (24 rows, 100 columns); ``stderr`` is
    what the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=slave,
            env=dict(env),
        )
    finally:
        os.close(slave)
    try:
        terminal = asyncio.ensure_future(asyncio.to_thread(_read_until_closed, master))
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        received = await asyncio.wait_for(terminal, timeout)
    finally:
        await stop(proc)
        os.close(master)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), received.decode(errors="replace"))


def _line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _read_until_closed(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def write_ids(path: Path, ids: Sequence[str]) -> Path:
    path.write_text("".join(f"{customer_id}\n" for customer_id in ids))
    return path


class Line(msgspec.Struct):
    """One JSON line of sweep's output."""

    customer_id: str
    ok: bool
    sources: list[PaymentSource] | None = None
    error: dict[str, object] | None = None


_LINE = msgspec.json.Decoder(Line)


def read_lines(text: str | bytes) -> list[Line]:
    """Every line of JSON Lines output, decoded (fails on a corrupt one)."""
    data = text.encode() if isinstance(text, str) else text
    assert not data or data.endswith(b"\n"), "the last line is not complete"
    return [_LINE.decode(line) for line in data.splitlines()]


_ESCAPE = re.compile(r"\x1b\[(\d*)([A-Za-z])")


def screen(received: str) -> list[str]:
    """The lines a terminal shows after receiving ``received``: carriage returns, clearing
    to the end of the line (ESC [K) and moving up (ESC [A) applied; other escapes dropped."""
    lines: list[list[str]] = [[]]
    row = col = 0
    at = 0
    while at < len(received):
        char = received[at]
        escape = _ESCAPE.match(received, at)
        if escape is not None:
            count, command = int(escape[1] or 1), escape[2]
            if command == "K":
                del lines[row][col:]
            elif command == "A":
                row = max(row - count, 0)
            at = escape.end()
            continue
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
            col = 0
            if row == len(lines):
                lines.append([])
        else:
            line = lines[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = char
            else:
                line.append(char)
            col += 1
        at += 1
    return ["".join(line).rstrip() for line in lines if "".join(line).strip()]
