"""Process settings the node processes need before torch or Open3D is imported.

Open3D and torch each bring an OpenMP runtime. With OpenMP's default active waiting, each
runtime's threads spin for a while after every parallel region, burning the cores the other
runtime, DDS and the executor need; a node alternates between the two many times a second.
Passive waiting lets a 640x480 fusion node keep up with 30 Hz on 2 cores (99% of frames
integrated instead of 45%, benchmarks/fusion_node.py). Offline training is left as it is.
"""
from __future__ import annotations

import os


def prefer_passive_openmp() -> None:
    """Ask OpenMP threads to sleep rather than spin when idle, unless the user chose.

    Must run before the first import of torch or open3d in the process.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
