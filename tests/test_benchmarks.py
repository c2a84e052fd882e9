"""benchmarks/: each script runs at the smallest size and writes a JSON with the expected keys
and positive numbers; bad input is one line and exit status 2. These check the scripts, not
the speed (benchmarks are not tests). ~2 minutes on 2 cores."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, run_cli

BENCH = REPO / "benchmarks"
SCRIPTS = ("train", "preprocess", "inference", "scaling", "checkpoint_save", "corpus_scaling")

pytestmark = pytest.mark.e2e  # every test here runs the commands


def run_bench(name, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def run_ok(name, out, *args, shared_data):
    proc = run_bench(name, *args, "--out", out, env={"ROBERTA_CLI_DATA": str(shared_data)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| " in proc.stdout and "---" in proc.stdout  # the markdown table
    result = json.loads(out.read_text())
    assert result["benchmark"] == name and result["machine"]["cpu_count"] >= 1
    return result


def positive(row, *keys):
    for key in keys:
        assert isinstance(row[key], (int, float)) and row[key] > 0, (key, row)


@pytest.fixture(scope="module")
def small_bin(shared_data, tmp_path_factory):
    """WikiText-2 valid with a dictionary of its own symbols (~18K): the tiny shape's data."""
    out = tmp_path_factory.mktemp("bench") / "wiki"
    gpt2 = shared_data / "gpt2_bpe"
    run_cli("roberta-preprocess", "text", shared_data / "wikitext-2-raw" / "wiki.valid.raw",
            "--valid-fraction", "0.05", "--destdir", out, "--bpe", "gpt2",
            "--gpt2-encoder", gpt2 / "encoder.json", "--gpt2-vocab", gpt2 / "vocab.bpe",
            "--doc-boundary", "blank-line", "--workers", "2", "--quiet")
    return out


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_and_bad_input(name):
    assert run_bench(name, "--help").returncode == 0
    proc = run_bench(name, "--no-such-flag")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"benchmarks/{name}.py: error:"), proc.stderr


def test_train_tiny(small_bin, shared_data, tmp_path):
    result = run_ok("train", tmp_path / "train.json", "--shape", "tiny", "--steps", "4",
                    "--batch-size", "8", "--peers", "roberta-cli,fairseq,hf-bf16",
                    "--data", small_bin, shared_data=shared_data)
    assert result["shape"] == "tiny" and result["vocab"] == 4 + len(
        (small_bin / "dict.txt").read_text().splitlines()) + 1
    positive(result["peak_flops"], "fp32", "bf16")
    positive(result, "flops_per_token")
    assert [r["peer"] for r in result["rows"]] == ["roberta-cli", "fairseq", "hf-bf16"]
    for row in result["rows"]:
        positive(row, "tokens_per_s", "tokens_per_batch", "peak_rss_mb", "tflops", "mfu_pct")
        assert row["precision"] in ("fp32", "bf16")


def test_train_bad_data_is_one_line(tmp_path):
    proc = run_bench("train", "--data", tmp_path)
    assert proc.returncode == 2 and "no dict.txt" in proc.stderr and "Traceback" not in proc.stderr


def test_scaling_tiny(small_bin, shared_data, tmp_path):
    result = run_ok("scaling", tmp_path / "scaling.json", "--sizes", "tiny", "--seq-lens", "64",
                    "--tokens-per-batch", "512", "--steps", "4", "--data", small_bin,
                    shared_data=shared_data)
    (row,) = result["rows"]
    assert (row["size"], row["seq_len"], row["batch_size"], row["peer"]) == ("tiny", 64, 8, "roberta-cli")
    positive(row, "tokens_per_s", "peak_rss_mb", "mfu_pct")


def test_preprocess_small(shared_data, tmp_path):
    result = run_ok("preprocess", tmp_path / "pre.json", "--sizes", "1", "--workers", "2",
                    shared_data=shared_data)
    assert [r["pipeline"] for r in result["rows"]] == ["roberta-cli", "fairseq"]
    for row in result["rows"]:
        positive(row, "corpus_mb", "seconds", "mb_per_s", "main_rss_mb")
        assert row["identical"] == "yes", row["differing"]  # same ids as fairseq's pipeline


def test_inference_small(shared_data, tmp_path):
    result = run_ok("inference", tmp_path / "inf.json", "--sentences", "16", "--repeats", "2",
                    shared_data=shared_data)
    rows = {(r["task"], r["peer"]): r for r in result["rows"]}
    assert set(rows) == {(t, p) for t in ("features", "classify")
                         for p in ("roberta-cli", "roberta-cli-bf16", "roberta-cli-ids", "fairseq",
                                   "hf", "hf-ids")}
    for row in rows.values():
        assert row["sentences"] == 16
        positive(row, "seconds", "sentences_per_s", "median_sentences_per_s")
        assert len(row["repeat_seconds"]) == 2


def test_checkpoint_save_tiny(shared_data, tmp_path):
    result = run_ok("checkpoint_save", tmp_path / "save.json", "--sizes", "tiny", "--repeats", "1",
                    shared_data=shared_data)
    rows = {row["peer"]: row for row in result["rows"]}
    assert rows.keys() == {"fairseq", "roberta-cli"}
    for row in rows.values():
        positive(row, "checkpoint_mb", "save_s", "load_s")
    assert rows["fairseq"]["checkpoint_mb"] == rows["roberta-cli"]["checkpoint_mb"]  # same file


def test_corpus_scaling_two_small_sizes(shared_data, tmp_path):
    result = run_ok("corpus_scaling", tmp_path / "scale.json", "--sizes", "0.002,0.004",
                    "--fairseq-up-to", "0.002", shared_data=shared_data)
    rows = result["rows"]
    assert [r["peer"] for r in rows] == ["roberta-cli", "fairseq"] * 2 + \
        ["roberta-cli (extrapolated)", "fairseq (extrapolated)"]
    for row in rows[:4]:
        positive(row, "corpus_mb", "data_bin_mb", "tokens_m", "first_update_s", "train_rss_mb")
    positive(rows[0], "pre_mb_per_s", "pre_main_rss_mb")
    positive(rows[1], "pre_mb_per_s")  # fairseq's pipeline at the first size only
    assert "pre_s" not in rows[3]
    assert rows[2]["tokens_m"] > 1.5 * rows[0]["tokens_m"]  # twice the text
    assert rows[4]["corpus_mb"] == 160_000 and rows[4]["data_bin_mb"] > 1000 * rows[2]["data_bin_mb"]
