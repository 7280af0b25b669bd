"""The exceptions mmrace raises, one class per way a run can fail.

    MmraceError
     +-- VerdictError            a run ended with a verdict other than ok (an AssertionError too)
     |    +-- Violation          a check failed (use_after_free, linearizability, ...)
     |    +-- Deadlock           no thread could run
     |    +-- LockOrder          lockdep found a lock-order cycle
     |    +-- BudgetExceeded     the step budget ran out (possibly a livelock)
     +-- ModelError              an internal error of the model (also a RuntimeError)

`Result.raise_for_verdict()` raises the VerdictError that matches a result's verdict.
Every one carries what replays the failure: `reproducer`, the .mmr text that
`mmrace.run(mmrace.parse(e.reproducer))` runs to the same verdict and trace hash.

This module imports nothing from mmrace, so that mmrace._core can derive its ModelError
from MmraceError while the package is still being imported.
"""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmrace.api import Result


class MmraceError(Exception):
    """The root of every error mmrace raises about a run (not ValueError for bad input,
    nor NotBuilt for a model not built yet)."""


class VerdictError(MmraceError, AssertionError):
    """A run ended with a verdict other than ok.  `result` is the Result, `reproducer`
    its .mmr reproducer; str() names the verdict, the check and the message, then gives
    the shell lines that save the reproducer and replay it.

    It is an AssertionError too, so that pytest and Hypothesis report a failed check
    (mmrace.testing.check) as a failed test, and Hypothesis shrinks it."""

    verdict = ""  # the verdict each subclass stands for

    def __init__(self, result: Result):
        self.result = result
        self.reproducer = result.reproducer
        check = f" ({result.check})" if result.check else ""
        super().__init__(f"verdict {result.verdict}{check} at step {result.step}: "
                         f"{result.message}\n\nTo replay it, paste into a shell (the "
                         f"reproducer is the .mmr text between the EOF lines):\n\n"
                         f"{self.replay_script()}")

    def __reduce__(self):
        # Exception pickles its args, the message; the result rebuilds it (a failure sent
        # back from a worker process: multiprocessing, pytest-xdist).
        return type(self), (self.result,)

    def replay_script(self, path: str = "repro.mmr") -> str:
        """Shell lines that write the reproducer to `path` and replay it: its schedule
        line makes `mmrace run` repeat the run, to the same verdict and trace hash."""
        quoted = shlex.quote(path)
        return (f"cat > {quoted} <<'EOF'\n{self.reproducer.rstrip(chr(10))}\nEOF\n"
                f"mmrace run {quoted}\n")

    @property
    def check(self) -> str | None:
        return self.result.check


class Violation(VerdictError):
    """A check failed: the model reached a state or transition the kernel forbids."""

    verdict = "violation"


class Deadlock(VerdictError):
    """No thread or event could run while some thread was blocked."""

    verdict = "deadlock"


class LockOrder(VerdictError):
    """Lockdep found a possible circular (or recursive) locking dependency."""

    verdict = "lock_order"


class BudgetExceeded(VerdictError):
    """The run exceeded its step budget (possibly a livelock)."""

    verdict = "budget"


# verdict -> the class raise_for_verdict raises; `interrupted` (a C++ caller's Ctrl-C;
# Python sees KeyboardInterrupt) raises the base class.
BY_VERDICT: dict[str, type[VerdictError]] = {
    c.verdict: c for c in (Violation, Deadlock, LockOrder, BudgetExceeded)}


def error_for(result: Result) -> VerdictError | None:
    """The exception for result's verdict, None for ok."""
    if result.verdict == "ok":
        return None
    return BY_VERDICT.get(result.verdict, VerdictError)(result)
