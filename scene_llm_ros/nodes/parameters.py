"""Declaring node parameters from one table, each with a descriptor (type, range, docs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


@dataclass(frozen=True)
class Param:
    """One parameter: name, default, description, optional numeric range, and whether it can
    change while the node runs (``dynamic``) or only before configure."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    dynamic: bool = False


def declare(node: Node, params: tuple[Param, ...]) -> None:
    """Declare every parameter of ``params`` on ``node`` with its descriptor."""
    for p in params:
        descriptor = ParameterDescriptor(description=p.description, read_only=False,
                                         additional_constraints="" if p.dynamic else
                                         "takes effect on configure")
        if p.low is not None and not isinstance(p.default, bool):
            if isinstance(p.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(p.low),
                                                         to_value=int(p.high), step=1)]
            elif isinstance(p.default, float):
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(p.low), to_value=float(p.high), step=0.0)]
        node.declare_parameter(p.name, p.default, descriptor)


def values(node: Node, params: tuple[Param, ...]) -> dict[str, Any]:
    """Current values of ``params`` by name."""
    return {p.name: node.get_parameter(p.name).value for p in params}
