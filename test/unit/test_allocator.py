"""reuse_freed_memory: a freed large buffer stays with the process for the next one."""
from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# In a fresh interpreter (the setting lasts for the process): resident memory after a 256 MB
# buffer was filled and freed, and whether the setting was applied.
_PROBE = """
import json, sys
import numpy as np
from scene_llm_ros.allocator import reuse_freed_memory

def resident_mb():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

applied = reuse_freed_memory() if sys.argv[1] == "reuse" else False
before = resident_mb()
buffer = np.ones(256 * 2**20, np.uint8)
del buffer
print(json.dumps({"applied": applied, "kept_mb": resident_mb() - before}))
"""


def _probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the setting is glibc's")
def test_freed_large_buffers_stay_mapped_only_when_asked():
    default, reused = _probe("default"), _probe("reuse")
    assert not default["applied"] and reused["applied"]
    # glibc's defaults unmap the buffer on free; reused, its pages stay for the next one.
    assert default["kept_mb"] < 32
    assert reused["kept_mb"] > 200
