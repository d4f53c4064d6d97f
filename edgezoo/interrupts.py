"""Ctrl-C and SIGTERM that always stop a run.

Native toolchains and libraries sometimes swallow the KeyboardInterrupt a signal raises (a
bare ``except:`` in a converter, a C++ frame that catches everything): measured, a SIGTERM
during LiteRT's conversion let the export finish and exit 0. The handler here also records
the signal, and the executor checks the record at every stage boundary, so an interrupt that
was swallowed still stops the run at the next stage and the work folder is removed.
"""

from __future__ import annotations

import signal
import threading

_received = threading.Event()


def handler(signum, frame):
    _received.set()
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT and SIGTERM through ``handler`` (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def check() -> None:
    """Raise KeyboardInterrupt when a signal arrived, even if its exception was swallowed."""
    if _received.is_set():
        raise KeyboardInterrupt
