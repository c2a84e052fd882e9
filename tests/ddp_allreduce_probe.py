"""roberta-train, counting DDP's gradient all-reduces (one per bucket) with a comm hook; for
tests/test_train.py. Each rank prints ``allreduce buckets N`` on stderr at exit.

    python -m torch.distributed.run --nproc_per_node 2 tests/ddp_allreduce_probe.py DATA ...
"""
import atexit
import sys

from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

calls = 0


def counting_allreduce(process_group, bucket):
    global calls
    calls += 1
    return allreduce_hook(process_group, bucket)


def init_and_hook(self, *args, _init=DistributedDataParallel.__init__, **kwargs):
    _init(self, *args, **kwargs)
    self.register_comm_hook(None, counting_allreduce)


DistributedDataParallel.__init__ = init_and_hook
atexit.register(lambda: print(f"allreduce buckets {calls}", file=sys.stderr, flush=True))

if __name__ == "__main__":
    from roberta_cli.cli.train import main

    main(sys.argv[1:])
