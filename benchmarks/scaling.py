"""Training throughput against sequence length and model size: tokens/s, peak memory and MFU of
roberta-cli (and vanilla fairseq, if asked) over a grid of sizes x sequence lengths, at a
fixed number of tokens per batch so that every cell does the same work per update:

    python benchmarks/scaling.py                                   # tiny,small,medium x 128,256,512
    python benchmarks/scaling.py --sizes tiny,small --seq-lens 128,512 --peers roberta-cli,fairseq
    python benchmarks/scaling.py --sizes tiny --seq-lens 64,128 --steps 4 --tokens-per-batch 512

Each cell is one run of benchmarks/train.py's peers (see its --help for the peers, how tokens/s
is read from fairseq's log, and the MFU formula); batch = tokens per batch / sequence length
sequences. Sizes are roberta_cli.presets.SIZES (tiny 2/128, small 4/256, medium 8/512, base
12/768 layers/hidden). Data: --data, else WikiText-2 valid with GPT-2's 50K dict.txt (--vocab
corpus: only the symbols of the text, ~18K), preprocessed into a temp dir.
"""
import sys
from pathlib import Path

import common
import train
from roberta_cli import presets

PROG = "benchmarks/scaling.py"
PEERS = ("roberta-cli", "fairseq", "fairseq-best", "hf", "hf-bf16")


def build_parser():
    p = common.Parser(prog=PROG, description=__doc__)
    p.add_argument("--sizes", type=common.comma_list(tuple(presets.SIZES)),
                   default=["tiny", "small", "medium"], help="comma list (default tiny,small,medium)")
    p.add_argument("--seq-lens", type=common.int_list, default=[128, 256, 512],
                   help="comma list of tokens per sample (default 128,256,512)")
    p.add_argument("--tokens-per-batch", type=common.positive_int, default=4096,
                   help="sequences per update = this / sequence length (default 4096)")
    p.add_argument("--steps", type=common.positive_int, default=12, help="updates per cell")
    p.add_argument("--peers", type=common.comma_list(PEERS), default=["roberta-cli"],
                   help=f"comma list (default roberta-cli): {','.join(PEERS)}")
    p.add_argument("--data", help="a data-bin made by roberta-preprocess")
    p.add_argument("--vocab", choices=["gpt2", "corpus"], default="gpt2",
                   help="dictionary of the default data (ignored with --data)")
    common.add_training_run_flags(p, "scaling")
    return p


def run(o):
    device = train.resolve_device(o.device)
    common.set_threads(o.threads)
    for seq in o.seq_lens:
        train.check_settings(seq, o.steps)
        if seq > o.tokens_per_batch:
            raise common.UserError(f"--tokens-per-batch {o.tokens_per_batch} is less than one "
                                   f"sequence of {seq}")
    if o.logs:
        Path(o.logs).mkdir(parents=True, exist_ok=True)
    data = common.check_data_bin(o.data) if o.data else common.wiki_data_bin(o.vocab)
    peaks = train.matmul_peaks(device)
    rows = []
    for size in o.sizes:
        for seq in o.seq_lens:
            r = train.make_run(size, seq, o.tokens_per_batch // seq, o.steps, data, device)
            for row in train.measure(o.peers, r, peaks, o.logs):
                rows.append({"size": size, "seq_len": seq, "batch_size": r["batch"], **row})
    vocab = common.dictionary_size(data)
    title = (f"scaling: {o.tokens_per_batch} tokens/batch, {o.steps} steps, vocab {vocab:,}, "
             f"{device}; matmul peak fp32 {peaks['fp32'] / 1e12:.2f} / bf16 "
             f"{peaks['bf16'] / 1e12:.2f} TFLOP/s")
    columns = [("size", "size"), ("seq_len", "seq"), ("batch_size", "batch")] + train.COLUMNS
    meta = {"sizes": o.sizes, "seq_lens": o.seq_lens, "tokens_per_batch": o.tokens_per_batch,
            "steps": o.steps, "vocab": vocab, "device": device,
            "peak_flops": {"fp32": peaks["fp32"], "bf16": peaks["bf16"]}}
    common.report("scaling", title, columns, rows, meta, o.out)
    train.fail_on_errors(rows)


def main():
    o = build_parser().parse_args()
    common.run_main(lambda: run(o), PROG)


if __name__ == "__main__":
    sys.exit(main())
