"""A small mutation harness: are the tests able to fail?

For each module named, every mutant is one small change to its source (a comparison
flipped, ``and``/``or`` swapped, a ``not`` dropped, a whole-number constant moved by one,
``True``/``False`` swapped, a returned value replaced by ``None``, a statement such as a
``raise`` or an assignment deleted). Each mutant runs the module's own test files in a
copy of the repository, with a time bound per mutant (a hang counts as killed). A mutant
that the tests still pass "survived": either no test can tell it from the original
(equivalent), or a test is missing.

    .venv/bin/python -m tools.mutate lean_async/_ids.py lean_async/_retry.py
    .venv/bin/python -m tools.mutate lean_async/_ids.py --tests tests/test_ids.py --max 40
    .venv/bin/python -m tools.mutate lean_async/_sweep.py --lines 247 324  # re-check survivors

Nothing in the working tree is changed: the mutants live in a temporary copy.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The test files that exercise each module (the harness runs only these, in this order:
# the fastest and most direct first, so that most mutants die within a second).
TESTS_FOR_MODULE: dict[str, list[str]] = {
    "lean_async/_ids.py": [
        "tests/test_ids.py",
        "tests/test_customers.py",
        "tests/test_security.py",
    ],
    "lean_async/_exceptions.py": [
        "tests/test_errors.py",
        "tests/test_retry_rules.py",
        "tests/test_security.py",
    ],
    "lean_async/_webhook_signature.py": [
        "tests/test_webhooks.py",
        "tests/test_webhooks_abuse.py",
        "tests/test_properties.py",
    ],
    "lean_async/_retry.py": [
        "tests/test_retry_rules.py",
        "tests/test_client_config.py",
        "tests/test_rate_control.py",
    ],
    "lean_async/_cli/formats.py": [
        "tests/test_output_formats.py",
        "tests/test_cli_resume.py",
    ],
    "lean_async/_config.py": ["tests/test_client_config.py", "tests/test_security.py"],
    "lean_async/_auth.py": [
        "tests/test_auth.py",
        "tests/test_oauth_integration.py",
        "tests/test_client_config.py",
    ],
    "lean_async/_protocol.py": [
        "tests/test_protocol.py",
        "tests/test_transport_integration.py",
        "tests/test_hooks.py",
    ],
    "lean_async/_sweep.py": [
        "tests/test_sweep_engine.py",
        "tests/test_sweep_async_input_pauses.py",
        "tests/test_sweep.py",
    ],
}

_FLIPPED_COMPARISON: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass(frozen=True)
class Mutant:
    line: int
    description: str
    source: str  # the whole mutated module


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    how: str  # "failed", "timeout" or "survived"


def _offsets(source: str) -> list[int]:
    """The offset of the start of each line (1-based line numbers index it from 1)."""
    starts = [0, 0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _span(node: ast.AST, starts: list[int]) -> tuple[int, int]:
    # ast columns are UTF-8 byte offsets; the modules mutated here keep code ASCII.
    start = starts[node.lineno] + node.col_offset  # type: ignore[attr-defined]
    end = starts[node.end_lineno] + node.end_col_offset  # type: ignore[attr-defined]
    return start, end


def _docstring_nodes(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                ids.add(id(first))
    return ids


def _replacements(node: ast.AST, docstrings: set[int]) -> Iterator[tuple[str, str]]:
    """(replacement text for ``node``'s span, description) for each mutant at ``node``."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        flipped = _FLIPPED_COMPARISON.get(type(node.ops[0]))
        if flipped is not None:
            new = ast.Compare(left=node.left, ops=[flipped()], comparators=node.comparators)
            yield ast.unparse(new), "comparison flipped"
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield ast.unparse(ast.BoolOp(op=other, values=node.values)), "and/or swapped"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "(" + ast.unparse(node.operand) + ")", "not dropped"
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            yield repr(not node.value), "boolean swapped"
        elif isinstance(node.value, int):
            yield repr(node.value + 1), "constant + 1"
            yield repr(node.value - 1), "constant - 1"
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "return None", "return value replaced by None"
    elif isinstance(node, (ast.Raise, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)):
        if id(node) in docstrings:
            return
        if isinstance(node, ast.AnnAssign) and node.value is None:
            return
        if isinstance(node, ast.Expr) and not isinstance(node.value, (ast.Call, ast.Await)):
            return
        yield "pass", f"{type(node).__name__.lower()} statement deleted"


def _skipped(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Annotations, imports and ``__all__`` are not behaviour; neither is a type check."""
    if isinstance(node, ast.Assign) and any(
        isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
    ):
        return True
    parent = parents.get(id(node))
    while parent is not None:
        if isinstance(parent, (ast.Import, ast.ImportFrom)):
            return True
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return True
        parent = parents.get(id(parent))
    return False


def mutants(source: str) -> list[Mutant]:
    tree = ast.parse(source)
    starts = _offsets(source)
    docstrings = _docstring_nodes(tree)
    parents: dict[int, ast.AST] = {}
    annotations: set[int] = set()
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[id(child)] = parent
        for field in ("annotation", "returns"):
            sub = getattr(parent, field, None)
            if isinstance(sub, ast.AST):
                annotations.update(id(n) for n in ast.walk(sub))
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in annotations or not hasattr(node, "lineno") or _skipped(node, parents):
            continue
        for text, description in _replacements(node, docstrings):
            start, end = _span(node, starts)
            mutated = source[:start] + text + source[end:]
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            found.append(Mutant(node.lineno, description, mutated))
    found.sort(key=lambda m: m.line)
    return found


def _copy_repository(destination: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache"
    )
    for name in ("lean_async", "tests", "benchmarks", "tools"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, destination / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, destination / name)


def _run_tests(workdir: Path, tests: list[str], timeout: float) -> str:
    """ "passed", "failed" or "timeout" for the test files in ``workdir``."""
    # PYTHONPATH: the CLI subprocesses some tests start import the mutant too.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(workdir))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    finally:  # on a timeout, and when the harness itself is stopped
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if code is None:
        return "timeout"
    return "passed" if code == 0 else "failed"


def run_module(
    module: str,
    original: str,
    tests: list[str],
    cap: int,
    timeout: float,
    workdir: Path,
    lines: set[int] | None = None,
) -> list[Outcome]:
    target = workdir / module
    outcomes: list[Outcome] = []
    try:
        started = time.monotonic()
        baseline = _run_tests(workdir, tests, 900)
        if baseline != "passed":
            raise SystemExit(f"{module}: the unmutated tests do not pass ({baseline}): {tests}")
        # A hang counts as caught, so a mutant gets well over what the unmutated tests take:
        # a slow machine must not turn survivors into kills.
        timeout = max(timeout, 3 * (time.monotonic() - started) + 10)
        found = mutants(original)
        if lines:
            found = [m for m in found if m.line in lines]
        if len(found) > cap:
            # An even spread over the module rather than its first lines only.
            step = len(found) / cap
            found = [found[int(i * step)] for i in range(cap)]
        for number, mutant in enumerate(found, 1):
            target.write_text(mutant.source)
            result = _run_tests(workdir, tests, timeout)
            killed = result != "passed"
            outcomes.append(Outcome(mutant, killed, result if killed else "survived"))
            mark = "." if killed else "S"
            print(mark, end="" if number % 60 else "\n", flush=True)
    finally:
        target.write_text(original)
    print()
    return outcomes


def report(module: str, original: str, outcomes: list[Outcome]) -> None:
    killed = sum(o.killed for o in outcomes)
    total = len(outcomes)
    score = 100.0 * killed / total if total else 100.0
    print(f"{module}: {killed}/{total} killed, {total - killed} survived, score {score:.0f}%")
    for outcome in outcomes:
        if outcome.killed:
            continue
        mutant = outcome.mutant
        print(f"  survived {module}:{mutant.line} ({mutant.description})")
        diff = difflib.unified_diff(
            original.splitlines(), mutant.source.splitlines(), lineterm="", n=0
        )
        for line in list(diff)[2:]:
            if not line.startswith("@@"):
                print(f"    {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.mutate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("modules", nargs="+", help="module files, e.g. lean_async/_ids.py")
    parser.add_argument("--tests", nargs="*", help="test files (default: the module's own)")
    parser.add_argument("--max", type=int, default=80, help="at most this many mutants a module")
    parser.add_argument(
        "--lines", nargs="*", type=int, help="only the mutants on these lines (re-check survivors)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds a mutant's tests may take (at least 3 times the unmutated run, plus 10)",
    )
    args = parser.parse_args(argv)
    # Stopped with SIGTERM: unwind, so that the running tests are killed and the copy removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary: list[tuple[str, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="lean-mutate-") as tmp:
        workdir = Path(tmp)
        _copy_repository(workdir)
        for module in args.modules:
            module = Path(module).as_posix()
            tests = args.tests or TESTS_FOR_MODULE.get(module)
            if not tests:
                parser.error(f"no test files known for {module}: pass --tests")
            started = time.monotonic()
            original = (ROOT / module).read_text()
            outcomes = run_module(
                module, original, tests, args.max, args.timeout, workdir, set(args.lines or ())
            )
            report(module, original, outcomes)
            print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
            summary.append((module, sum(o.killed for o in outcomes), len(outcomes)))
    print("\nmodule                              killed/total  score")
    for module, killed, total in summary:
        print(f"{module:36} {killed:5}/{total:<5}  {100.0 * killed / max(total, 1):4.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
