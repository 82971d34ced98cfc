"""Fixtures and isolation shared by every test."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

# Isolate DDS discovery before anything imports rclpy: a random domain per test session and
# discovery limited to this machine, so parallel runs never see each other's nodes.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)
os.environ["HF_HUB_OFFLINE"] = "1"
# Node subprocesses dump every thread's stack when aborted (dds_helpers.interrupt does on a
# hang).
os.environ["PYTHONFAULTHANDLER"] = "1"

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public files in ../shared/data (skips the test where they are absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
