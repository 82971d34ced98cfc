"""Spin an executor until Ctrl-C or SIGTERM, with the signal kept out of the executor's code.

A KeyboardInterrupt is raised wherever the main thread happens to be, possibly inside the
executor while it holds a lock or a handle, and the shutdown transition that follows can then
wait forever (a node process seen hanging on Ctrl-C in CI). Here the signal only sets a flag
that the spin loop reads between two waits, so the nodes shut down from a consistent state
while ROS is still up. SIGTERM (``ros2 launch`` sends it after SIGINT) shuts down the same way.
"""
from __future__ import annotations

import signal
import threading

from rclpy.executors import Executor, ExternalShutdownException

# How long one wait lasts at most: the delay between a signal and the start of shutdown.
_WAIT_S = 0.1
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def spin_until_signalled(executor: Executor) -> None:
    """Spin ``executor`` until SIGINT or SIGTERM arrives or its context shuts down.

    Must be called from the main thread (Python delivers signals there only).
    """
    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set())
                for number in _STOP_SIGNALS}
    try:
        while not stop.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=_WAIT_S)
    except ExternalShutdownException:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
