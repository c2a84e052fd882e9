"""Static vs dynamic masking in rcli_mlm (the paper's Table 1), on real WikiText-2 blocks."""
import numpy as np
from fairseq import tasks

from roberta_cli.tasks.pretraining import PretrainingConfig


def _train_set(data, masking, copies=3):
    cfg = PretrainingConfig(data=str(data), tokens_per_sample=64, masking=masking,
                            static_copies=copies, seed=5)
    task = tasks.TASK_REGISTRY["rcli_mlm"].setup_task(cfg)
    task.load_dataset("train")
    return task.dataset("train")


def _masks(dataset, epoch, indices):
    dataset.set_epoch(epoch)
    return [dataset[i]["net_input.src_tokens"].numpy().copy() for i in indices]


def test_static_masks_repeat_across_epochs_dynamic_do_not(wiki_bin):
    static, dynamic = _train_set(wiki_bin, "static"), _train_set(wiki_bin, "dynamic")
    n = len(dynamic)
    assert len(static) == 3 * n  # the data copied 3 times
    picks = list(range(0, n, max(1, n // 20)))
    # each static copy keeps its mask in every epoch; dynamic masks change each epoch
    for epoch in (2, 7):
        assert all(np.array_equal(a, b) for a, b in zip(_masks(static, 1, picks),
                                                      _masks(static, epoch, picks)))
    changed = [not np.array_equal(a, b) for a, b in zip(_masks(dynamic, 1, picks),
                                                        _masks(dynamic, 2, picks))]
    assert sum(changed) >= 0.9 * len(picks)
    # the copies of one sequence carry different masks (sort order aside, by dataset index)
    base = static.dataset  # SortDataset -> NestedDictionaryDataset
    first, second = base[picks[3]], base[picks[3] + n]
    assert not np.array_equal(first["net_input.src_tokens"], second["net_input.src_tokens"])
