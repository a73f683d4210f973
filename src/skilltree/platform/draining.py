"""Whether this process is draining: it got SIGTERM and is about to stop.

Between SIGTERM and the moment the server stops accepting connections, `/readyz` answers 503 so
a balancer or Kubernetes takes the instance out of rotation while it still serves everything
sent to it. Without that window, connections a balancer opens in the gap between "the process
closed its socket" and "the balancer noticed" fail. The flag is per process, like the signal.
"""

from __future__ import annotations

import threading

_draining = threading.Event()


def begin_draining() -> None:
    _draining.set()


def is_draining() -> bool:
    return _draining.is_set()


def reset_draining() -> None:
    """For tests that drain an app in-process and go on."""
    _draining.clear()
