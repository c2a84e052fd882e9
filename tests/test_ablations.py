"""The paper's ablations as runs (roberta_cli.experiments, roberta-train ablation|report): the
row presets, one real end-to-end ablation at the smoke scale, resuming, and the report."""
import json
import os

import pytest

from conftest import assert_user_error, run_cli
from roberta_cli import hub, metrics
from roberta_cli.data import tasks
from roberta_cli.experiments import ablations, paper
from roberta_cli.train_log import read_jsonl


@pytest.mark.parametrize("scale", list(paper.ABLATION_SCALES))
def test_batch_size_rows_see_the_same_sequences(scale):
    rows = paper.ablation_rows("batch_size", scale)
    seen = [r["total_batch"] * r["updates"] for r in rows.values()]
    assert max(seen) / min(seen) < 1.05, rows  # equal up to rounding the updates
    batches = [r["total_batch"] for r in rows.values()]
    assert batches == sorted(batches) and batches[-1] == 32 * batches[0]  # 256 : 8K
    lrs = [r["lr"] for r in rows.values()]
    assert lrs == sorted(lrs)  # larger batches, larger peak LR (paper Table 3)


def test_masking_and_format_rows_share_one_budget():
    for ablation, key in (("masking", "masking"), ("input_format", "input_format")):
        rows = paper.ablation_rows(ablation, "cpu-minutes")
        assert [r[key] for r in rows.values()] == paper.ABLATIONS[ablation]
        budgets = {(r["total_batch"], r["updates"], r["lr"]) for r in rows.values()}
        assert len(budgets) == 1


@pytest.mark.e2e
def test_tokens_seen_reach_the_last_update_past_the_last_log_line(tmp_path):
    """Updates 1-10 at 100 tokens, 11-20 at 120, then 5 more unlogged: at their mean, 110."""
    log = [{"tag": "train_inner", "step": 10, "wpb": 100.0},
           {"tag": "train_inner", "step": 20, "wpb": 120.0}, {"tag": "valid", "step": 25, "ppl": 9.0}]
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2" / "results.json").write_text(json.dumps(
        {"metric": "accuracy", "median": {"valid": {"accuracy": 50.0, "n": 8}}}))
    summary = ablations.summarize_row(tmp_path, "static", {}, ["SST-2"], 1.0)
    assert (summary["updates"], summary["tokens_seen"]) == (25, 1000 + 1200 + 5 * 110)


def test_bad_names_get_one_clear_line(tmp_path):
    proc = run_cli("roberta-train", "ablation", "masking", "--run-dir", tmp_path, "--scale",
                   "huge", check=False)
    assert_user_error(proc, "roberta-train", "unknown scale 'huge'", "cpu-minutes")
    proc = run_cli("roberta-train", "ablation", "nsp", "--run-dir", tmp_path, check=False)
    assert_user_error(proc, "roberta-train", "unknown ablation 'nsp'", "batch_size")
    proc = run_cli("roberta-train", "report", tmp_path, check=False)
    assert_user_error(proc, "roberta-train", "not an ablation run directory")
    (tmp_path / "notes.txt").write_text("mine")
    for args, words in ((["--run-dir", tmp_path], ["holds files that are not an ablation run's"]),
                        (["--run-dir", tmp_path / "notes.txt"], ["is a file"]),
                        (["--run-dir", tmp_path / "new", "--seeds", "-1"], ["whole numbers >= 0"]),
                        (["--run-dir", tmp_path / "new", "--data", tmp_path / "nope"],
                         ["does not exist"])):
        proc = run_cli("roberta-train", "ablation", "masking", *args, check=False)
        assert_user_error(proc, "roberta-train", *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.fixture(scope="module")
def masking_run(shared_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("ablation") / "masking"
    args = ["ablation", "masking", "--run-dir", run, "--scale", "smoke", "--tasks", "SST-2",
            "--data", shared_data / "gutenberg", "--glue-dir", shared_data / "glue"]
    run_cli("roberta-train", *args)
    return run, args


@pytest.mark.e2e
def test_report_of_an_unfinished_run_says_so(masking_run, tmp_path):
    run, _ = masking_run
    (tmp_path / "ablation.json").write_text((run / "ablation.json").read_text())
    proc = run_cli("roberta-train", "report", tmp_path, check=False)
    assert_user_error(proc, "roberta-train", "no finished rows")


@pytest.mark.e2e
def test_masking_ablation_end_to_end_and_report(masking_run):
    run, _ = masking_run
    dev = tasks.rows_of(run / "tasks" / "SST-2", "valid")
    for row in ("static", "dynamic"):
        summary = json.loads((run / row / "seed1" / "row.json").read_text())
        assert summary["settings"]["masking"] == row and summary["updates"] == 32
        # the row's perplexity: its pretraining's last validation, 2 ** loss (bits per token)
        valid = read_jsonl(run / row / "seed1" / "pretrain" / "train_log.jsonl", tag="valid")
        assert valid[-1]["step"] == summary["updates"]
        assert summary["valid_ppl"] == pytest.approx(2 ** valid[-1]["loss"], rel=1e-3)
        # learned something: an untrained model is about uniform over its ~2,000 symbols
        symbols = len((run / row / "seed1" / "pretrain" / "dict.txt").read_text().splitlines())
        assert 1000 < symbols <= 2000
        assert summary["valid_ppl"] < symbols / 2, (summary["valid_ppl"], symbols)
        assert summary["tokens_seen"] > 0
        # the row's SST-2 score: its fine-tuned model's labels of the raw dev rows (one seed)
        tuned = hub.from_pretrained(run / row / "seed1" / "SST-2" / "seed1")
        predicted = tuned.predict_label_batch([t[0] for t in dev.texts])
        assert metrics.accuracy([int(p) for p in predicted], [int(y) for y in dev.labels]) == \
            pytest.approx(summary["scores"]["SST-2"]["accuracy"])
    written = (run / "report.md").read_text()  # by roberta-train ablation itself
    proc = run_cli("roberta-train", "report", run)
    report = (run / "report.md").read_text()
    assert proc.stdout.strip() == report.strip() == written.strip()
    assert "| static | 1 |" in report and "| dynamic | 1 |" in report
    assert "paper: SST-2" in report and "92.5" in report and "smoke" in report
    for png in ("ppl_vs_updates.png", "ppl_vs_tokens.png", "downstream.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_rerun_keeps_finished_rows(masking_run):
    """Only what is missing runs again: here the dynamic row's fine-tuning."""
    run, args = masking_run
    static_row = run / "static" / "seed1" / "row.json"
    before = static_row.stat().st_mtime_ns
    checkpoint = run / "dynamic" / "seed1" / "pretrain" / "checkpoint_last.pt"
    ckpt_before = checkpoint.stat().st_mtime_ns
    os.remove(run / "dynamic" / "seed1" / "row.json")
    os.remove(run / "dynamic" / "seed1" / "SST-2" / "results.json")
    proc = run_cli("roberta-train", *args)
    assert "static seed 1 already finished" in proc.stderr
    assert static_row.stat().st_mtime_ns == before
    assert checkpoint.stat().st_mtime_ns == ckpt_before  # pretraining not redone
    assert (run / "dynamic" / "seed1" / "row.json").is_file()
    wiki = args[-3].parent / "wikitext-2-raw" / "wiki.valid.raw"
    other = [wiki if a == args[-3] else a for a in args]  # another --data
    proc = run_cli("roberta-train", *other, check=False)
    assert_user_error(proc, "roberta-train", "holds a run made with data", "--run-dir")
    assert static_row.stat().st_mtime_ns == before
