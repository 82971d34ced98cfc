"""`scene-llm <verb>`: the command line of scene_llm_ros.

Each verb lives in its own module under ``scene_llm_ros.commands`` and provides
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning the exit status.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from scene_llm_ros import __version__
from scene_llm_ros.allocator import reuse_freed_memory
from scene_llm_ros.errors import SceneLlmError
from scene_llm_ros.nodes.runtime import prefer_passive_openmp

# Verbs that run the ROS nodes in this process; they need the node processes' OpenMP setting,
# which must be made before any verb module (some import Open3D) is loaded.
NODE_VERBS = ("run", "evaluate")

# Verb modules in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = ("synth", "bag", "fuse", "run", "ask", "evaluate",
                                    "align_encoder", "train", "train_listener", "train_answerer",
                                    "eval_offline")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every verb registered."""
    parser = argparse.ArgumentParser(
        prog="scene-llm",
        description="Fuse RGB-D into a 3D scene memory and ask grounded questions about it.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"scene_llm_ros.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``scene-llm`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    arguments = sys.argv[1:] if argv is None else argv
    if any(arg in NODE_VERBS for arg in arguments[:2]):
        prefer_passive_openmp()
    else:
        reuse_freed_memory()
    parser = build_parser()
    args = parser.parse_args(arguments)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(levelname)s] %(name)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SceneLlmError as exc:
        logging.getLogger("scene-llm").error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
