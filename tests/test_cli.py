"""roberta_cli.cli: every command's help has examples and shows its defaults, usage errors are one
line, subcommands never steal a data path, and python -m roberta_cli lists the commands."""
import shutil
import subprocess
import sys

import pytest

from conftest import BIN
from roberta_cli import __main__ as entry
from roberta_cli import presets
from roberta_cli.cli import convert, finetune, preprocess, train

COMMANDS = [  # (main, argv before --help, prog shown in the usage line)
    (preprocess.main, [], "roberta-preprocess"),
    (preprocess.main, ["text"], "roberta-preprocess text"),
    (preprocess.main, ["glue"], "roberta-preprocess glue"),
    (preprocess.main, ["custom"], "roberta-preprocess custom"),
    (preprocess.main, ["race"], "roberta-preprocess race"),
    (preprocess.main, ["squad"], "roberta-preprocess squad"),
    (train.main, [], "roberta-train"),
    (train.main, ["ablation"], "roberta-train ablation"),
    (train.main, ["report"], "roberta-train report"),
    (finetune.main, [], "roberta-finetune"),
    (finetune.main, ["predict"], "roberta-finetune predict"),
    (convert.main, [], "roberta-convert"),
    (convert.main, ["to-hf"], "roberta-convert to-hf"),
    (convert.main, ["from-hf"], "roberta-convert from-hf"),
    (convert.main, ["to-fairseq"], "roberta-convert to-fairseq"),
    (entry.main, [], "python -m roberta_cli"),
]


def help_of(main, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("main,argv,prog", COMMANDS, ids=[" ".join(c[2].split()[1:]) or c[2]
                                                          for c in COMMANDS])
def test_every_help_has_examples(main, argv, prog, capsys):
    text = help_of(main, argv, capsys)
    assert text.startswith(f"usage: {prog} ") and "examples:\n" in text


def test_help_shows_defaults_and_the_passthrough(capsys):
    text = help_of(train.main, [], capsys)
    assert "(default: 500000, or the budget's)" in text and "(default: 16;" in text  # --max-update, --batch-size
    assert "data [-- fairseq-train flags ...]" in text
    assert "roberta-train ablation --help" in text  # the subcommands are named
    assert "[-- fairseq-train flags ...]" in help_of(finetune.main, [], capsys)
    assert "[-- fairseq-train flags ...]" in help_of(train.main, ["ablation"], capsys)
    commands = help_of(entry.main, [], capsys)
    for name in ("preprocess", "train", "finetune", "convert"):
        assert f"\n    {name} " in commands


@pytest.mark.parametrize("main,argv,words", [
    (train.main, ["data-bin/x", "--no-such-flag"], ["unrecognized arguments", "roberta-train --help"]),
    (train.main, ["data-bin/x", "--batch-size", "0"], ["'0' is not a positive integer"]),
    (finetune.main, ["--model", "m"], ["--data", "roberta-finetune --help"]),
    (preprocess.main, ["corpus/"], ["invalid choice: 'corpus/'", "text"]),
    (entry.main, ["pretrain"], ["invalid choice: 'pretrain'"]),
])
def test_usage_errors_are_one_line(main, argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].split(":")[0] in ("roberta-train", "roberta-finetune",
                                                       "roberta-preprocess", "roberta-convert",
                                                       "python"), err
    for word in words:
        assert word in err[0], (word, err)


def test_a_data_bin_named_like_a_subcommand_is_trained_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train.with_command(["report", "runs/x"])[0] == "report"
    assert train.with_command(["data-bin/x"]) == ["train", "data-bin/x"]
    assert train.with_command(["--help"]) == ["train", "--help"]
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "dict.txt").write_text("15 1\n")
    assert train.with_command(["report", "--max-update", "2"]) == ["train", "report",
                                                                   "--max-update", "2"]


@pytest.mark.e2e
def test_roberta_train_report_trains_on_a_data_bin_named_report(wiki_bin, tmp_path):
    shutil.copytree(wiki_bin, tmp_path / "report")
    proc = subprocess.run([str(BIN / "roberta-train"), "report",
                           "--max-update", "2", "--tokens-per-sample", "64", "--batch-size", "4",
                           "--", "--disable-validation"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "report" / "checkpoint_last.pt").is_file()
    assert "2 updates" in proc.stderr  # its plan


@pytest.mark.e2e
def test_python_dash_m_runs_the_commands():
    proc = subprocess.run([sys.executable, "-m", "roberta_cli", "train", "--help"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: roberta-train ")


def test_the_plan_names_what_a_budget_changes(monkeypatch):
    assert train.budget_note("cpu-minutes") == "pre-LayerNorm, dropout 0 (not the paper's recipe)"
    post_ln = {**presets.BUDGETS["cpu-hour"], "pre_ln": False, "dropout": 0.1}
    monkeypatch.setitem(presets.BUDGETS, "cpu-hour", post_ln)
    assert train.budget_note("cpu-hour") == "dropout 0.1 (not the paper's recipe)"
