"""roberta_cli.allocator: after keep_freed_memory(), a training loop's large tensors reuse freed
pages instead of faulting in fresh ones (each fault a zero-filled 4 KB page: the hidden cost of
a step's large elementwise ops). In a fresh interpreter, since the setting is the process's."""
import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from roberta_cli import allocator
if sys.argv[1] == "keep":
    assert allocator.keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def step():  # 64, 16 and 32 MB tensors, freed in a different order than made
    x, y = torch.ones(2**24), torch.ones(2**22)
    del x
    z = torch.ones(2**23)
    del y, z

for _ in range(10):  # until the heap has room for a step (glibc coalesces freed blocks)
    step()
before = faults()
for _ in range(10):
    step()
print(faults() - before)
"""


def page_faults(mode):
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.e2e
def test_keep_freed_memory_reuses_pages():
    default, kept = page_faults("default"), page_faults("keep")
    # glibc's default: the 64 MB tensor (above its 32 MB mmap ceiling) is mmapped and unmapped
    # every step: 16,384 fresh 4 KB pages each time (fewer, larger ones with transparent huge
    # pages set to "always"); kept: the heap already has room, no new pages
    assert 10 * kept < default and kept < 1000, (default, kept)
