"""Shared fixtures. Real data comes from ../shared/data (or $ROBERTA_CLI_DATA); tests that need
it skip when it is absent, unless ROBERTA_CLI_REQUIRE_DATA=1 (CI), which makes that a failure.

End-to-end tests (marked ``e2e``: they run the commands, train, or start interpreters) are
apart from the unit tests: ``pytest -m "not e2e"`` runs the fast half. A test is e2e when it
is marked so, or when it uses a fixture that runs the commands (E2E_FIXTURES, directly or
through another fixture)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roberta_cli import compat

compat.apply()  # before any test module imports fairseq (the installed .pth hook does it too)

REPO = Path(__file__).resolve().parents[1]
E2E_FIXTURES = {"wiki_bin", "wiki_sentences_bin", "tiny_run"}  # they run roberta-preprocess/-train


def pytest_collection_modifyitems(items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
BIN = Path(sys.executable).parent  # console scripts of the environment running the tests


def _data_root():
    return Path(os.environ.get("ROBERTA_CLI_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group, as DDP needs, destroyed after the test: one left behind would
    make every later test's process rank 0 of it, whatever its RANK says."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    yield dist.group.WORLD
    dist.destroy_process_group()


@pytest.fixture(scope="session")
def shared_data():
    root = _data_root()
    if not (root / "SOURCES.md").is_file():
        msg = f"shared data not found at {root} (set ROBERTA_CLI_DATA to the shared/data folder)"
        if os.environ.get("ROBERTA_CLI_REQUIRE_DATA") == "1":
            pytest.fail(msg + "; ROBERTA_CLI_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(msg)
    return root


def run_cli(name, *args, check=True, env=None, timeout=900):
    """Run a console script of this environment; returns the CompletedProcess (text)."""
    proc = subprocess.run([str(BIN / name), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def main_here(main, capsys, *args):
    """A command's main() in this process: (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(proc, prog, *words):
    """A user mistake: exit 2, one line `<prog>: error: ...` on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{prog}: error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])


@pytest.fixture(scope="session")
def wiki_bin(shared_data, tmp_path_factory):
    """WikiText-2 test (train) and valid (valid) with the GPT-2 BPE files: a real data-bin."""
    out = tmp_path_factory.mktemp("bin") / "wiki"
    wiki = shared_data / "wikitext-2-raw"
    run_cli("roberta-preprocess", "text", wiki / "wiki.test.raw", "--valid", wiki / "wiki.valid.raw",
            "--destdir", out, "--bpe", "gpt2", "--gpt2-dir", shared_data / "gpt2_bpe",
            "--doc-boundary", "blank-line", "--workers", "2")
    return out


TINY_TRAIN = ["--size", "tiny", "--tokens-per-sample", "64", "--batch-size", "16",
              "--lr", "2e-3", "--warmup-updates", "20", "--log-interval", "10", "--seed", "3"]


@pytest.fixture(scope="session")
def tiny_run(wiki_bin, tmp_path_factory):
    """A tiny RoBERTa pretrained by roberta-train for 150 updates on real text."""
    save = tmp_path_factory.mktemp("run") / "tiny"
    proc = run_cli("roberta-train", wiki_bin, "--save-dir", save, "--max-update", "150",
                   "--valid-interval", "50", *TINY_TRAIN, "--", "--max-valid-steps", "25")
    (save / "stderr.log").write_text(proc.stderr)
    return save


@pytest.fixture(scope="session")
def wiki_sentences_bin(shared_data, tmp_path_factory):
    """The same WikiText-2 files with a sentence per line (roberta-preprocess --split-sentences),
    for the pair input formats; WikiText's blank lines are its document boundaries."""
    out = tmp_path_factory.mktemp("bin") / "wiki-sentences"
    wiki = shared_data / "wikitext-2-raw"
    run_cli("roberta-preprocess", "text", wiki / "wiki.test.raw", "--valid", wiki / "wiki.valid.raw",
            "--destdir", out, "--bpe", "gpt2", "--gpt2-dir", shared_data / "gpt2_bpe",
            "--doc-boundary", "blank-line", "--split-sentences", "--workers", "2", "--quiet")
    return out


def masked_wiki_batch(hub_model, shared_data, lines, min_words):
    """The first ``lines`` WikiText-2 valid paragraphs of more than ``min_words`` words, cut
    to 64 tokens and padded, with a fixed 15% of their real tokens masked: (tokens, masked)."""
    with open(shared_data / "wikitext-2-raw/wiki.valid.raw", encoding="utf-8") as f:
        text = [ln.strip() for ln in f if len(ln.split()) > min_words][:lines]
    tokens = hub_model._pad([t[:64] for t in hub_model.encode_batch(text)])
    g = torch.Generator().manual_seed(0)
    return tokens, (torch.rand(tokens.shape, generator=g) < 0.15) & (tokens > 3)


def assert_grads_close(grads, ref_grads, rel):
    """The same parameters got gradients, each within ``rel`` of the reference's norm (plus a
    sliver of the total norm: k_proj.bias's is 0 in theory, rounding in practice)."""
    assert grads.keys() == ref_grads.keys()
    total = torch.stack([g.norm() for g in ref_grads.values()]).norm()
    for name, g in ref_grads.items():
        err = (grads[name] - g).norm()
        assert err <= rel * g.norm() + 1e-3 * rel * total, (name, err.item(), g.norm().item())
