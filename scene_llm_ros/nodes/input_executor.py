"""High-rate inputs of a node taken on their own executor thread.

rclpy's executors rebuild the wait set of every entity of every node they spin on each wake
(a lifecycle node with parameters and services has a few dozen), which costs about a
millisecond of interpreter time per message. Camera streams wake the executor several times
per frame, so that cost rather than the work dominated a node. Here the subscriptions live
on a hidden internal node whose single-threaded executor waits on them alone, as tf2_ros'
TransformListener does with its own node and thread. Callbacks run in arrival order on that
one thread, so they must only buffer.
"""
from __future__ import annotations

import threading

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter


class InputExecutor:
    """A hidden node ``_<owner>_input`` in the owner's namespace, spun on its own thread.

    Topic names are resolved with the owner's remappings, so ``-r color/image:=/cam/rgb``
    given to the owner applies here too; the internal node reads no global arguments (a
    ``__node:=`` rename of the owner must not rename it to the same name).
    """

    def __init__(self, owner: Node) -> None:
        self._owner = owner
        self.node = rclpy.create_node(
            f"_{owner.get_name()}_input", namespace=owner.get_namespace(),
            context=owner.context, use_global_arguments=False,
            start_parameter_services=False, enable_rosout=False,
            parameter_overrides=[Parameter("start_type_description_service", value=False)])
        self._executor = SingleThreadedExecutor(context=owner.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True,
                                        name=f"{owner.get_name()}_input")
        self._thread.start()

    def create_subscription(self, msg_type, topic: str, callback, qos, *, callback_group=None,
                            raw: bool = False):
        """As ``Node.create_subscription`` on the owner. ``callback_group`` is accepted and
        ignored: one thread runs every callback here, in arrival order."""
        resolved = self._owner.resolve_topic_name(topic)
        return self.node.create_subscription(msg_type, resolved, callback, qos, raw=raw)

    def close(self) -> None:
        """Stop the thread and destroy the internal node with its subscriptions."""
        self._executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass  # the context shut down: the owner is going away too
