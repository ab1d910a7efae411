"""Cooperative cancellation of long runs.

A Ctrl-C normally reaches a run as :class:`KeyboardInterrupt` wherever the main
thread happens to be. A library on the way can swallow it (an exception raised
inside a finaliser or a C extension's callback is dropped), and the run would go
on to write its manifest as if nothing happened. So the command-line interface
also records the interrupt in a flag (:func:`sigint_sets_flag`), and the recipe
runner calls :func:`check` between steps and before it declares a run finished:
an interrupted run always stops there at the latest, and never looks complete.

The library never installs a signal handler by itself; a notebook or a service
may call :func:`request_cancel` from another thread to stop a run at its next
step boundary.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["check", "clear", "request_cancel", "requested", "sigint_sets_flag"]

_REQUESTED = threading.Event()


def request_cancel() -> None:
    """Ask the running job to stop at its next step boundary."""
    _REQUESTED.set()


def requested() -> bool:
    """True once a cancellation was asked for and not cleared."""
    return _REQUESTED.is_set()


def clear() -> None:
    """Forget a cancellation request (before starting a new run)."""
    _REQUESTED.clear()


def check() -> None:
    """Raise :class:`KeyboardInterrupt` if a cancellation was asked for.

    Raises
    ------
    KeyboardInterrupt
        A cancellation is pending.
    """
    if _REQUESTED.is_set():
        raise KeyboardInterrupt("cancelled")


@contextmanager
def sigint_sets_flag() -> Iterator[None]:
    """While active, SIGINT both sets the flag and raises :class:`KeyboardInterrupt`.

    Does nothing outside the main thread (Python delivers signals to it only)
    nor when SIGINT is ignored (a job started in the background by a shell
    without job control must stay deaf to Ctrl-C). The previous handler is
    restored on exit, and the flag cleared.
    """
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        _REQUESTED.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, handler)
    clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        clear()
