"""A time bound on policy code: decision functions and effects.

Policy code runs in the caller's thread. `bounded(seconds, ...)` registers the thread
with one watchdog thread; when the policy's own time (time spent answering `said`
questions, e.g. a model call, is paused) passes the bound, the watchdog raises
`OverTime` inside the thread, between two bytecodes, and `bounded` turns it into the
author error the caller chose. A blocking call (C code: a sleep, a socket read) is only
interrupted when it returns, so `time.sleep` is wrapped when this module loads: in a
thread under a bound, a sleep longer than the time left raises at once; everywhere else
it is the same call. Code that catches BaseException in a loop cannot be stopped.

Also here: whether a `KeyboardInterrupt` came from a real Ctrl-C (SIGINT) while the
bound was active, or was raised by the policy itself.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["Budget", "OverTime", "active", "bounded", "paused"]

REFIRE_S = 0.25  # how often the watchdog raises again in code that swallowed OverTime


class OverTime(BaseException):
    """Raised inside policy code that ran past its bound (a BaseException, so an
    ``except Exception`` in the policy does not swallow it)."""


class Budget:
    """The bound of one run of policy code in one thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.thread = threading.get_ident()
        self.spent = 0.0
        self.since: float | None = time.monotonic()  # None while paused
        self.fired_at: float | None = None
        self.interrupted = False  # a real SIGINT arrived while the bound was active

    def left(self, now: float) -> float | None:
        """Seconds left, or None while paused."""
        if self.since is None:
            return None
        return self.seconds - self.spent - (now - self.since)


class _Watchdog:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.budgets: set[Budget] = set()
        self.thread: threading.Thread | None = None

    def add(self, budget: Budget) -> None:
        with self.cond:
            self.budgets.add(budget)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="dialogue-deadline", daemon=True)
                self.thread.start()
            self.cond.notify()

    def remove(self, budget: Budget) -> None:
        """Forget `budget`; idempotent, and clears an OverTime raised but not yet delivered."""
        with self.cond:
            self.budgets.discard(budget)
            if budget.fired_at is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(budget.thread), None)

    def pause(self, budget: Budget) -> None:
        with self.cond:
            if budget.since is not None:
                budget.spent += time.monotonic() - budget.since
                budget.since = None

    def resume(self, budget: Budget) -> None:
        with self.cond:
            if budget.since is None:
                budget.since = time.monotonic()
            self.cond.notify()

    def _run(self) -> None:
        with self.cond:
            while True:
                self.cond.wait(self._check(time.monotonic()))

    def _check(self, now: float) -> float | None:
        """Fire at every budget past its bound; the seconds until the next check (None: none due)."""
        wait = None
        for budget in self.budgets:
            left = budget.left(now)
            if left is None:
                continue
            if left <= 0:
                if budget.fired_at is None or now - budget.fired_at >= REFIRE_S:
                    budget.fired_at = now
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(budget.thread),
                                                               ctypes.py_object(OverTime))
                left = REFIRE_S
            wait = left if wait is None else min(wait, left)
        return wait


_WATCHDOG = _Watchdog()
_LOCAL = threading.local()


def active() -> Budget | None:
    """The bound active in this thread, if any."""
    return getattr(_LOCAL, "budget", None)


def _bounded_sleep(original: Callable[[float], None]) -> Callable[[float], None]:
    def sleep(seconds: float, /) -> None:
        budget = getattr(_LOCAL, "budget", None)
        if budget is not None and isinstance(seconds, (int, float)):
            left = budget.left(time.monotonic())
            if left is not None and seconds > left:
                raise OverTime
        return original(seconds)

    sleep.__doc__ = original.__doc__
    sleep.__wrapped__ = original  # type: ignore[attr-defined]
    return sleep


if not hasattr(time.sleep, "__wrapped__"):
    time.sleep = _bounded_sleep(time.sleep)


@contextmanager
def bounded(seconds: float, over: Callable[[], BaseException]) -> Iterator[Budget | None]:
    """Run the block under a bound of `seconds` of policy time; past it, raise `over()`.

    Inside a running bound of the same thread this adds nothing (the outer one counts);
    inside a paused one (policy code run while answering a `said`) it is a bound of its own.
    """
    outer = active()
    if outer is not None and outer.since is not None:
        yield outer
        return
    budget = Budget(seconds)
    try:
        with _sigint_noted(budget):
            try:
                _LOCAL.budget = budget
                _WATCHDOG.add(budget)
                yield budget
            finally:
                _LOCAL.budget = outer
                _WATCHDOG.remove(budget)
    except OverTime:
        _WATCHDOG.remove(budget)  # again: it may have arrived before the removal finished
        raise over() from None


@contextmanager
def paused() -> Iterator[None]:
    """Stop counting this thread's policy time in the block (a `said` answer, a model call)."""
    budget = active()
    if budget is None:
        yield
        return
    _WATCHDOG.pause(budget)
    try:
        yield
    finally:
        _WATCHDOG.resume(budget)


@contextmanager
def _sigint_noted(budget: Budget) -> Iterator[None]:
    """In the main thread, note on `budget` when a real SIGINT arrives, then let the
    handler that was there act as before."""
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not callable(previous):
        yield
        return

    def noted(signum, frame):
        budget.interrupted = True
        return previous(signum, frame)

    signal.signal(signal.SIGINT, noted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
