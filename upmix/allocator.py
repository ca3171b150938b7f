"""The C allocator's policy for torch's CPU work: keep freed memory for the next block.

glibc's malloc serves large requests with a fresh ``mmap`` (above a threshold it adjusts as it
goes) and hands the top of its heap back to the system when it is freed, so the large temporary
tensors of a separation chunk or a training step are mapped, zero-filled page by page and
unmapped again on every block: on 2 cores a training step of the orchestra model page-faulted
4.3 M times in 12 steps, with half the CPU time in the kernel. Keeping freed memory in the process
and growing the heap in large steps serves the next block from memory already mapped. Measured on
2 cores (docs/separation.md, "Training speed"): a training step of the orchestra model
1.85-2.01 s -> 1.27-1.39 s; `benchmarks/separation_speed.py`, 60 s of 44.1 kHz stereo, 8.27 s ->
6.3 s, at a peak memory of 1177-1507 MiB against 1170 MiB. glibc reads the same settings from
``MALLOC_*`` environment variables at start-up only, so this sets them with ``mallopt`` in the
running process.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
"""`mallopt` parameter: free memory at the heap's top kept before it is handed back, bytes."""
M_TOP_PAD = -2
"""`mallopt` parameter: extra bytes the heap grows by whenever it must grow."""
M_MMAP_THRESHOLD = -3
"""`mallopt` parameter: requests at least this large get their own mapping, bytes (fixing it
stops glibc's own adjustment)."""

SETTINGS = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: (1 << 31) - 1, M_TOP_PAD: 1 << 30}
"""The policy: requests under 32 MiB (glibc's largest threshold on 64-bit) from the heap, up to
2 GiB of freed memory kept, the heap grown 1 GiB at a time (address space; pages count as memory
only once they are used)."""


def keep_freed_memory() -> bool:
    """Apply `SETTINGS` to glibc's malloc in this process; False where the C library is not glibc
    (macOS, Windows, musl), which is left as it is. Call once, early, in a process's entry point."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, the C library's among them
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt accepts and ignores
    except (OSError, AttributeError):
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in SETTINGS.items())
