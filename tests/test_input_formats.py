"""The paper's input formats (Table 2) in rcli_mlm, on real WikiText-2 with a sentence per
line: DOC-SENTENCES blocks stay inside documents, tokens per update match across formats, and
an NSP run trains, loads in the hub and fine-tunes."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fairseq import tasks

from conftest import assert_user_error, run_cli
from roberta_cli import hub, metrics, presets
from roberta_cli.data import tasks as glue
from roberta_cli.tasks.pretraining import PretrainingConfig

BATCH, TOKENS = 16, 64


def _task(data, input_format):
    cfg = PretrainingConfig(data=str(data), tokens_per_sample=TOKENS, input_format=input_format,
                            seed=1)
    task = tasks.TASK_REGISTRY["rcli_mlm"].setup_task(cfg)
    task.load_dataset("train")
    return task


def _tokens_per_batch(task):
    """Mean real (non-pad) tokens of the batches fairseq makes with --batch-size BATCH."""
    dataset = task.dataset("train")
    itr = task.get_batch_iterator(dataset, max_sentences=BATCH, max_positions=TOKENS,
                                  required_batch_size_multiple=8, seed=1)
    return float(np.mean([sum(dataset.num_tokens(i) for i in b) for b in itr.frozen_batches]))


def test_doc_sentences_blocks_never_hold_two_documents(wiki_sentences_bin):
    """A document boundary is </s> (end of a line) followed by the empty line's </s>."""
    def crossings(input_format):
        task = _task(wiki_sentences_bin, input_format)
        blocks, _, _ = task._load_dataset_split("train", 1, False)  # before masking
        eos = task.source_dictionary.eos()
        inner = (blocks[i].tolist()[1:-1] for i in range(len(blocks)))
        return sum(any(a == b == eos for a, b in zip(x, x[1:])) for x in inner)

    assert crossings("full-sentences") > 50
    assert crossings("doc-sentences") == 0


def test_tokens_per_update_match_across_formats(wiki_sentences_bin):
    per_batch = {f: _tokens_per_batch(_task(wiki_sentences_bin, f)) for f in presets.INPUT_FORMATS}
    full = per_batch["full-sentences"]
    for name, tokens in per_batch.items():
        assert abs(tokens / full - 1) < 0.10, per_batch


def test_batch_of_one_holds_a_full_length_sequence(wiki_sentences_bin):
    """Batching by tokens with --batch-size 1: one mean FULL-SENTENCES length is below the
    longest block, which fairseq refuses to batch; the budget is at least --tokens-per-sample."""
    task = _task(wiki_sentences_bin, "doc-sentences")
    dataset = task.dataset("train")
    lengths = np.array([dataset.num_tokens(i) for i in range(len(dataset))])
    assert dataset.rcli_tokens_per_sequence < lengths.max() == TOKENS
    itr = task.get_batch_iterator(dataset, max_sentences=1, max_positions=TOKENS,
                                  required_batch_size_multiple=8, seed=1)
    batches = itr.frozen_batches
    assert sorted(i for b in batches for i in b) == list(range(len(dataset)))
    assert max(len(b) * lengths[b].max() for b in batches) <= TOKENS
    assert max(len(b) for b in batches) > 1  # short blocks at documents' ends share a batch


def _pair_draw(task, split, epoch):
    dataset, labels, _ = task._load_dataset_split(split, epoch, False)
    return [dataset[i].tolist() for i in range(0, len(dataset), 7)], [labels[i] for i in
                                                                       range(len(labels))]


def test_nsp_pairs_are_drawn_anew_each_epoch(wiki_sentences_bin):
    task = _task(wiki_sentences_bin, "segment-pair")
    assert task.has_sharded_data("train")  # fairseq then reloads the training data each epoch
    assert not task.has_sharded_data("valid")
    first, again, second = (_pair_draw(task, "train", e) for e in (1, 1, 2))
    assert first == again  # a draw is reproducible (resuming mid-run gets the same pairs)
    samples, labels = first
    assert samples != second[0] and labels != second[1]
    assert abs(np.mean(second[1]) - 0.5) < 0.05  # IsNext still half of the pairs
    assert _pair_draw(task, "valid", 1) == _pair_draw(task, "valid", 3)  # one validation set


def test_static_nsp_draws_pairs_per_copy(wiki_sentences_bin):
    cfg = PretrainingConfig(data=str(wiki_sentences_bin), tokens_per_sample=TOKENS,
                            input_format="sentence-pair", masking="static", static_copies=3,
                            seed=1)
    task = tasks.TASK_REGISTRY["rcli_mlm"].setup_task(cfg)
    assert not task.has_sharded_data("train")  # the copies and their masks stay every epoch
    dataset, labels, _ = task._load_dataset_split("train", 1, False)
    single = _task(wiki_sentences_bin, "sentence-pair")._load_dataset_split("train", 1, False)[0]
    n = len(single)
    assert len(dataset) == len(labels) == 3 * n
    assert [dataset[i].tolist() for i in range(n)] == [single[i].tolist() for i in range(n)]
    copy_labels = [[labels[k * n + i] for i in range(n)] for k in range(3)]
    assert copy_labels[0] != copy_labels[1] != copy_labels[2]  # each copy its own draw
    task.load_dataset("train")
    assert len(task.dataset("train")) == 3 * n  # not copied a second time for the masks


def test_input_format_errors(wiki_bin, wiki_sentences_bin, shared_data, tmp_path):
    proc = run_cli("roberta-train", wiki_bin, "--input-format", "sentence-pair",
                   "--save-dir", tmp_path / "a", check=False)
    assert_user_error(proc, "roberta-train", "one sentence per line", "--split-sentences")
    book = shared_data / "gutenberg" / "pg11.txt"
    one = tmp_path / "one-doc"
    run_cli("roberta-preprocess", "text", book, "--valid", shared_data / "gutenberg" / "pg105.txt",
            "--doc-boundary", "file", "--destdir", one, "--bpe", "gpt2",
            "--gpt2-dir", shared_data / "gpt2_bpe", "--workers", "1", "--quiet")
    proc = run_cli("roberta-train", one, "--input-format", "segment-pair",
                   "--save-dir", tmp_path / "b", check=False)
    assert_user_error(proc, "roberta-train", "needs document boundaries", "1 document")


@pytest.fixture(scope="module")
def nsp_run(wiki_sentences_bin, tmp_path_factory):
    save = tmp_path_factory.mktemp("nsp") / "segment-pair"
    run_cli("roberta-train", wiki_sentences_bin, "--input-format", "segment-pair", "--size", "tiny",
            "--tokens-per-sample", TOKENS, "--batch-size", BATCH, "--lr", "2e-3",
            "--warmup-updates", "10", "--max-update", "60", "--log-interval", "10",
            "--save-dir", save, "--", "--max-valid-steps", "10")
    return save


def test_segment_pair_nsp_trains(nsp_run):
    log = [json.loads(line) for line in open(nsp_run / "train_log.jsonl")]
    train = [r for r in log if r.get("tag") == "train_inner"]
    assert "nsp_loss" in train[0] and "nsp_accuracy" in train[0]
    assert train[-1]["loss"] < train[0]["loss"] - 1  # the MLM loss falls
    assert train[-1]["nsp_loss"] < train[0]["nsp_loss"]


def test_mlm_nsp_loss_is_mean_mlm_plus_mean_nsp(nsp_run, wiki_sentences_bin):
    """rcli_mlm_nsp on a real validation batch of segment pairs, with the trained model: the
    loss is the summed MLM cross-entropy plus the summed NSP cross-entropy times masked tokens
    / sequences, so that fairseq's division by the masked tokens leaves mean MLM + mean NSP
    (the gradient of the NSP head says so too); logged loss and nsp_loss are the two parts in
    bits per masked token and per sequence."""
    from fairseq import metrics as fairseq_metrics
    from fairseq.criterions.masked_lm import MaskedLmConfig

    from roberta_cli.criterions.mlm_nsp import MlmNspLoss

    task = _task(wiki_sentences_bin, "segment-pair")
    task.load_dataset("valid")
    itr = task.get_batch_iterator(task.dataset("valid"), max_sentences=BATCH,
                                  max_positions=TOKENS, seed=1).next_epoch_itr(shuffle=False)
    sample = next(itr)
    model = hub.from_pretrained(nsp_run).model.eval()
    src, target, nsp_target = sample["net_input"]["src_tokens"], sample["target"], \
        sample["nsp_target"].view(-1)
    pad = task.source_dictionary.pad()
    masked = target.ne(pad)
    n = len(nsp_target)
    assert n == len(src) and 0 < nsp_target.sum() < n and masked.sum() > n

    criterion = MlmNspLoss(MaskedLmConfig(tpu=False), task)
    loss, sample_size, log = criterion(model, sample)
    head = model.classification_heads[presets.NSP_HEAD]
    (loss / sample_size).backward()  # what fairseq's trainer does with the gradients
    head_grads = [p.grad.clone() for p in head.parameters()]
    model.zero_grad()

    # by hand: fairseq's LM head on the masked positions, the nsp head on the features
    logits = model(src, masked_tokens=masked)[0]
    mlm = F.cross_entropy(logits.float(), target[masked], reduction="sum")
    features = model(src, features_only=True)[0]
    nsp = F.cross_entropy(head(features).float(), nsp_target, reduction="sum")
    assert int(sample_size) == int(masked.sum())
    expected = mlm + nsp * masked.sum() / n
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert float(log["loss"]) == pytest.approx(mlm.item(), rel=1e-5)
    assert float(log["nsp_loss"]) == pytest.approx(nsp.item(), rel=1e-5)
    for got, want in zip(head_grads, torch.autograd.grad(nsp / n, list(head.parameters()))):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    with fairseq_metrics.aggregate() as agg:
        MlmNspLoss.reduce_metrics([log])
    logged = agg.get_smoothed_values()
    assert logged["nsp_loss"] == pytest.approx(nsp.item() / n / math.log(2), abs=6e-4)
    assert logged["loss"] == pytest.approx(mlm.item() / int(masked.sum()) / math.log(2), abs=6e-4)


def test_nsp_checkpoint_loads_and_fine_tunes(nsp_run, shared_data, tmp_path):
    m = hub.from_pretrained(nsp_run)
    assert "nsp" in m.model.classification_heads
    assert m.fill_mask("The <mask> of the city .", topk=2)
    data = tmp_path / "sst2"
    run_cli("roberta-preprocess", "glue", "--task", "SST-2", "--glue-dir", shared_data / "glue",
            "--bpe-from", nsp_run, "--limit", "32", "--destdir", data, "--workers", "1", "--quiet")
    run_cli("roberta-finetune", "--task", "SST-2", "--model", nsp_run, "--data", data,
            "--save-dir", tmp_path / "ft", "--max-update", "4", "--device", "cpu",
            "--precision", "fp32", "--batch-size", "8")
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    dev = glue.rows_of(data, "valid")  # the hub's labels of the raw dev rows score as reported
    predicted = hub.from_pretrained(tmp_path / "ft" / "seed1").predict_label_batch(
        [t[0] for t in dev.texts])
    assert metrics.accuracy([int(p) for p in predicted], [int(y) for y in dev.labels]) == \
        pytest.approx(results["seeds"]["1"]["valid"]["accuracy"])
