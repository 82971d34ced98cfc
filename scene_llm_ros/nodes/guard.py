"""Keep one failing callback from ending the executor (and with it the node)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rclpy.exceptions import InvalidHandle

#: Seconds between two logs of the same failing callback.
LOG_PERIOD_S = 5.0


def guarded(node, callback: Callable[..., Any], what: str,
            fallback: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """``callback`` with its exceptions logged (throttled) instead of raised into the executor.

    :param what: names the callback in the log.
    :param fallback: builds the return value after a failure from the same arguments (a
        service's response); None returns None.
    """

    @functools.wraps(callback)
    def run(*args):
        try:
            return callback(*args)
        except InvalidHandle:
            # A publisher or client was destroyed under a running callback: the node is
            # shutting down, as rclpy's executor itself assumes.
            node.get_logger().debug(f"{what} skipped: the node is being destroyed")
            return fallback(*args) if fallback is not None else None
        except Exception as exc:  # noqa: BLE001 - the executor must keep serving
            node.get_logger().error(f"{what} failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=LOG_PERIOD_S)
            return fallback(*args) if fallback is not None else None

    return run
