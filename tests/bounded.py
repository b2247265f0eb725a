"""`finishes(work)`: run work that used to take minutes and fail the test if it still does."""

import threading
import time


def finishes(work, seconds: float = 20.0):
    """The result of `work()` (or its exception), failing the test when it runs past
    `seconds`: the work runs in a thread, so endless Python code is left behind, and
    the clock also catches C code that holds the interpreter lock until it returns."""
    out: dict = {}

    def run():
        try:
            out["value"] = work()
        except BaseException as exc:  # handed to the test's thread below
            out["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    took = time.monotonic() - started
    assert not thread.is_alive() and took <= seconds, f"still running after {took:.0f} s"
    if "error" in out:
        raise out["error"]
    return out["value"]
