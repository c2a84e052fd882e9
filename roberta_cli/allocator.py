"""Keep freed memory in the process for the next allocation (glibc malloc), so that a training
step's large tensors reuse pages instead of faulting in fresh ones:

    roberta-train data-bin/books ...      # calls keep_freed_memory() before training
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 fairseq-train --user-dir roberta_cli ...

glibc serves allocations above its mmap threshold (at most 32 MB) with mmap and gives them back
with munmap on free, and trims the heap top when free; either way the next step's tensors of the
same size start on untouched pages, and the kernel zero-fills every 4 KB page on its first
write. On a CPU that is most of the cost of a step's large elementwise ops (the embedding
gradient's fill, the attention softmax and its backward), a measurable share of a training step
(benchmarks/RESULTS.md). The peak resident
memory stays the same (the pages are reused, not added); the process just does not return
them to the system before it exits.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters, glibc's malloc.h
KEEP = 1 << 30  # bytes of free heap top glibc may keep before trimming (1 GB; default 128 KB)


def keep_freed_memory():
    """Tell glibc's malloc never to mmap (every block from the heap, reused once freed) and to
    keep up to KEEP free bytes at the heap top; True if it took, False where there is no glibc
    (macOS, musl): nothing changes there."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP))
