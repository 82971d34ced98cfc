"""`scene-llm ask`: call the AskScene service like a planner and print the result.

    scene-llm ask "what is on the table?"
    scene-llm ask "the chair next to the desk" --task ground --json

Exit status 0 on an answer; 1 with the error code and message when the node refused or
failed; 2 when no AskScene service answered in time.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _point(text: str) -> tuple[float, float, float]:
    try:
        x, y, z = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected x,y,z in metres, got {text!r}") from exc
    return x, y, z


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ask`` verb."""
    parser = subparsers.add_parser("ask", help="ask the running scene a question",
                                   description="Call AskScene and print the answer and the "
                                               "grounded objects.")
    parser.add_argument("question")
    parser.add_argument("--task", default="", help="'' (auto), qa, ground, caption")
    parser.add_argument("--point", type=_point, action="append", default=[],
                        metavar="X,Y,Z", help="clicked point in the scene frame, repeatable")
    parser.add_argument("--max-new-tokens", type=int, default=0)
    parser.add_argument("--service", default="ask_scene", help="service name")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def summary(response) -> dict:
    """The response as plain data (what --json prints)."""
    objects = []
    for obj in response.objects:
        c, s = obj.bbox.center.position, obj.bbox.size
        mask_pixels = int(np.count_nonzero(np.frombuffer(bytes(obj.mask.data), np.uint8)))
        objects.append({"id": obj.id, "label": obj.label, "score": round(obj.score, 3),
                        "center": [round(c.x, 3), round(c.y, 3), round(c.z, 3)],
                        "size": [round(s.x, 3), round(s.y, 3), round(s.z, 3)],
                        "roi": [obj.roi.x_offset, obj.roi.y_offset, obj.roi.width,
                                obj.roi.height],
                        "mask_pixels": mask_pixels,
                        "points": obj.points.width * obj.points.height})
    return {"success": response.success, "error_code": response.error_code,
            "message": response.message, "answer": response.answer, "objects": objects,
            "frame_id": response.header.frame_id, "scene_version": response.scene_version,
            "timing_ms": {"encode": round(response.encode_ms, 1),
                          "prefill": round(response.prefill_ms, 1),
                          "decode": round(response.decode_ms, 1),
                          "total": round(response.total_ms, 1)},
            "tokens_generated": response.tokens_generated}


def run(args: argparse.Namespace) -> int:
    """Call the service once; return the exit status."""
    import rclpy
    from geometry_msgs.msg import Point

    from scene_llm_ros.srv import AskScene

    rclpy.init()
    node = rclpy.create_node("scene_llm_ask")
    try:
        client = node.create_client(AskScene, args.service)
        if not client.wait_for_service(timeout_sec=min(args.timeout, 10.0)):
            sys.stderr.write(f"no AskScene service {args.service!r} (is scene-llm run or the "
                             "inference node up?)\n")
            return 2
        request = AskScene.Request(question=args.question, task=args.task,
                                   max_new_tokens=args.max_new_tokens,
                                   return_masks=True, return_points=True,
                                   prompt_points=[Point(x=x, y=y, z=z) for x, y, z in args.point])
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
        if not future.done():
            sys.stderr.write(f"no answer within {args.timeout:.0f} s\n")
            return 2
        result = summary(future.result())
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    elif result["success"]:
        sys.stdout.write(f"{result['answer']}\n")
        for obj in result["objects"]:
            sys.stdout.write(f"  [{obj['id']}] {obj['label']} {obj['score']:.2f} centre "
                             f"{obj['center']} size {obj['size']} ({result['frame_id']}), "
                             f"{obj['points']} points, mask {obj['mask_pixels']} px\n")
        sys.stdout.write(f"  scene version {result['scene_version']}, "
                         f"{result['tokens_generated']} tokens, {result['timing_ms']}\n")
    else:
        sys.stderr.write(f"{result['error_code']}: {result['message']}\n")
    return 0 if result["success"] else 1
