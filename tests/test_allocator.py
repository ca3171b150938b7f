"""The allocator policy: freed memory is kept, so repeated blocks of work stop page-faulting."""

import subprocess
import sys

import pytest

from upmix.allocator import keep_freed_memory

WORK = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from upmix.allocator import keep_freed_memory
    assert keep_freed_memory()
rng = np.random.default_rng(0)
def block():  # a dozen temporaries of 0.5-48 MiB, as a chunk of separation makes
    arrays = [np.ones(int(n)) for n in rng.integers(1 << 16, 6 << 20, 12)]
    return sum(float(a[-1]) for a in arrays)
block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    block()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(policy: str) -> int:
    """Minor page faults of 30 blocks after a first one, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", WORK, policy], check=True, capture_output=True, text=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_kept_memory_is_reused_without_page_faults():
    assert keep_freed_memory()
    default, kept = faults("default"), faults("keep")
    assert kept * 10 < default, (kept, default)
