"""What the package's lifecycle nodes share: the transitions around a core worker, and
running one node on its own."""
from __future__ import annotations

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

from scene_llm_ros.nodes.spinning import spin_until_signalled


class WorkerLifecycleNode(LifecycleNode):
    """Activate starts the core's worker, deactivate stops it, cleanup and shutdown release
    what configure built. Subclasses configure in ``on_configure`` and implement the three
    hooks."""

    _detach_logging = None  # set by subclasses that forward core logging to this node

    def destroy_node(self) -> None:
        # A node destroyed without a shutdown transition still frees its scene and model
        # (Open3D reports memory still held at process exit as a failure).
        self._release()
        if self._detach_logging is not None:
            self._detach_logging()
        super().destroy_node()

    def _start_worker(self) -> None:
        raise NotImplementedError

    def _stop_worker(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._start_worker()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS


def run_standalone(node_class: type[WorkerLifecycleNode], args: list[str] | None,
                   threads: int) -> None:
    """``ros2 run`` entry: the node configures and activates itself and spins until Ctrl-C
    or SIGTERM."""
    # rclpy's own handlers would shut the context down before the shutdown transition runs.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = node_class()
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
        node.trigger_activate()
    try:
        spin_until_signalled(executor)
    finally:
        node.trigger_shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
