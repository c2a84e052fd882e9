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


def test_masking_rates_over_the_training_set(wiki_bin):
    """BERT's rates where they take effect: 15% of the real tokens are targets; of those the
    source holds <mask> 80%, the original token 10%, a random token 10%."""
    task = tasks.TASK_REGISTRY["rcli_mlm"].setup_task(
        PretrainingConfig(data=str(wiki_bin), tokens_per_sample=64, seed=5))
    task.load_dataset("train")
    dataset, d = task.dataset("train"), task.source_dictionary
    dataset.set_epoch(1)
    pad, mask_idx = d.pad(), d.index("<mask>")
    real = targets = masked = kept = 0
    for i in range(len(dataset)):
        item = dataset[i]
        src, tgt = item["net_input.src_tokens"].numpy(), item["target"].numpy()
        at = tgt != pad  # not a target
        real += int((src != pad).sum())
        targets += int(at.sum())
        masked += int((src[at] == mask_idx).sum())
        kept += int((src[at] == tgt[at]).sum())
    assert abs(targets / real - 0.15) < 0.02, (targets, real)
    assert abs(masked / targets - 0.8) < 0.05, (masked, targets)
    assert abs(kept / targets - 0.1) < 0.04, (kept, targets)
    assert abs((targets - masked - kept) / targets - 0.1) < 0.04, (masked, kept, targets)
