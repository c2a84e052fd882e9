"""roberta_cli.pretrain: the fairseq-train command line of the paper's recipe."""
from roberta_cli import pretrain


def test_fairseq_argv_carries_the_papers_recipe(wiki_bin):
    run = pretrain.plan(str(wiki_bin), size="small", total_batch_size=2048, batch_size=16,
                        max_update=1000, device="cpu", precision="fp32")
    argv = run.argv() + ["--foo", "1"]
    flags = dict(zip(argv[1::2], argv[2::2]))
    assert flags["--adam-betas"] == "(0.9,0.98)" and flags["--adam-eps"] == "1e-06"
    assert flags["--weight-decay"] == "0.01" and flags["--clip-norm"] == "0.0"
    assert flags["--lr"] == "0.0007"  # batch 2K -> 7e-4 (paper Table 3)
    assert flags["--warmup-updates"] == "100"  # preset 10K, capped at 10% of a 1000-update run
    assert flags["--update-freq"] == "128" and flags["--lr-scheduler"] == "polynomial_decay"
    assert argv[-2:] == ["--foo", "1"] and "--compile" not in argv
    run = pretrain.plan(str(wiki_bin), compile=True, device="cpu", precision="bf16")
    assert "--compile" in run.argv()  # rcli_mlm's
    assert run.argv()[-1] == "--autocast-bf16"
