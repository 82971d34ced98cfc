"""Fixtures for tests over real DDS: an rclpy context spun by a multi-threaded executor."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor


class RosHarness:
    """A private rclpy context with an executor spinning in a background thread."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._nodes = []

    def start(self) -> None:
        self._thread.start()

    def node(self, name: str):
        """Create a node in this context and add it to the executor."""
        node = rclpy.create_node(name, context=self.context)
        self.executor.add_node(node)
        self._nodes.append(node)
        return node

    def close(self) -> None:
        self.executor.shutdown()
        for node in self._nodes:
            node.destroy_node()
        rclpy.shutdown(context=self.context)
        self._thread.join(timeout=5)


@pytest.fixture
def ros() -> Iterator[RosHarness]:
    harness = RosHarness()
    harness.start()
    yield harness
    harness.close()
