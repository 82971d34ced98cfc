"""`scene-llm run`: fusion and inference nodes in one process, sharing the scene in memory.

    scene-llm run                                   # the embedded default model
    scene-llm run --checkpoint runs/stage3/final
    scene-llm run --params config/scene_llm.yaml -r color/image:=/camera/color/image_raw

No launch_ros needed. The inference node loads the model; the fusion node uses the model's
own patch encoder, and the model reads the fusion core's snapshots directly (no copies, no
ScenePatches traffic). Ctrl-C stops both.
"""
from __future__ import annotations

import argparse
import logging

_LOG = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` verb."""
    parser = subparsers.add_parser(
        "run", help="run fusion + inference in one process",
        description="Start fusion_node and inference_node in one process (composition "
                    "without launch_ros), configure and activate them, and serve until Ctrl-C.")
    parser.add_argument("--params", help="ROS parameters file with fusion_node and "
                                         "inference_node sections")
    parser.add_argument("--checkpoint", help="model directory (sets inference_node's "
                                             "checkpoint parameter)")
    parser.add_argument("-r", "--remap", action="append", default=[], metavar="FROM:=TO",
                        help="topic remapping for both nodes, repeatable")
    parser.set_defaults(func=run)


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """The ``--ros-args`` of both nodes."""
    ros_args = ["--ros-args"]
    if args.params:
        ros_args += ["--params-file", args.params]
    for remap in args.remap:
        ros_args += ["-r", remap]
    return ros_args


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; return the exit status."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.signals import SignalHandlerOptions

    from scene_llm_ros.nodes.composition import CompositionError, compose
    from scene_llm_ros.nodes.spinning import spin_until_signalled

    # rclpy's own handlers would shut the context down before the shutdown transitions run.
    rclpy.init(args=ros_arguments(args), signal_handler_options=SignalHandlerOptions.NO)
    overrides = [Parameter("checkpoint", value=args.checkpoint)] if args.checkpoint else []
    try:
        nodes = compose(inference_parameters=overrides)
    except CompositionError as exc:
        _LOG.error("%s", exc)
        rclpy.try_shutdown()
        return 1
    executor = MultiThreadedExecutor(num_threads=6)
    for node in nodes.nodes:
        executor.add_node(node)
    _LOG.info("fusion_node and inference_node active; ask with: scene-llm ask \"QUESTION\"")
    try:
        spin_until_signalled(executor)
    finally:
        for node in (nodes.inference, nodes.fusion):
            node.trigger_shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
