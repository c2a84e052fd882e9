"""Checkpoints that stock fairseq 0.12.2 loads: only fairseq's own task, architecture, criterion
and optimizer names, the model's dimensions spelled out. ``to_fairseq`` rewrites a
roberta-cli checkpoint that way; ``write_checkpoint`` is also how Hugging Face models come in.

    roberta-convert to-fairseq checkpoints/books exported/books
    # on a machine without roberta-cli:
    RobertaModel.from_pretrained("exported/books", "checkpoint_best.pt", bpe="gpt2")
"""
import argparse
import shutil
from pathlib import Path

from roberta_cli import checkpoints, compat
from roberta_cli.convert.output import check_output, mark, model_checkpoint, model_source
from roberta_cli.data.binarize import staged_output
from roberta_cli.data.bpe import copy_model_files
from roberta_cli.errors import UserError

compat.apply()  # before fairseq is imported

from fairseq import options  # noqa: E402
from fairseq.criterions import CRITERION_DATACLASS_REGISTRY  # noqa: E402
from fairseq.dataclass.utils import convert_namespace_to_omegaconf  # noqa: E402
from fairseq.optim import OPTIMIZER_DATACLASS_REGISTRY  # noqa: E402
from fairseq.tasks import TASK_DATACLASS_REGISTRY  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

CHECKPOINT = checkpoints.BEST  # what converted models are saved as
STOCK_NAMES = {  # roberta-cli's registered names -> fairseq's own, for the same computation
    "rcli_mlm": "masked_lm", "rcli_masked_lm": "masked_lm", "rcli_mlm_nsp": "masked_lm",
    "rcli_sentence_prediction": "sentence_prediction", "rcli_sentence_ranking": "sentence_ranking",
    "rcli_adam": "adam",
}


def fairseq_config(argv) -> dict:
    """The config fairseq-train saves in a checkpoint for this command line (plain containers)."""
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=["data", *argv])
    return OmegaConf.to_container(convert_namespace_to_omegaconf(args), resolve=True,
                                  enum_to_str=True)


def write_checkpoint(path, cfg: dict, model_state: dict, criterion="MaskedLmLoss"):
    """A checkpoint as fairseq-train writes one without optimizer state (update 0), whole at
    every instant (checkpoints.save_atomic)."""
    state = {"args": None, "cfg": cfg, "model": model_state, "criterion": None,
             "optimizer_history": [{"criterion_name": criterion, "optimizer_name": "FairseqAdam",
                                    "lr_scheduler_state": {"best": None}, "num_updates": 0}],
             "task_state": {}, "extra_state": {"metrics": {}, "previous_training_time": 0}}
    checkpoints.save_atomic(state, path)


def to_fairseq(model_dir, out_dir, force=False) -> Path:
    """``out_dir``: the model of ``model_dir`` as a checkpoint stock fairseq loads, with its
    dict.txt, BPE files and manifest (and a fine-tuned model's input0/, label/ and task
    manifest, which fairseq's sentence_prediction task and the hub read). ``model_dir``: a model
    directory, or a checkpoint .pt file in one."""
    model_dir, path = model_source(model_dir)
    out = check_output(out_dir, path or model_dir, force)
    path = model_checkpoint(model_dir, path)
    state = checkpoints.read(path, "the model")
    cfg = state.get("cfg")
    if not cfg:
        raise UserError(f"{path} is in the 2019 format (no cfg); stock fairseq loads it as it is")
    checkpoints.check_dictionaries(model_dir, state, path)  # else the export would not load
    cfg = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True) \
        if not isinstance(cfg, dict) else dict(cfg)
    if (cfg.get("task") or {}).get("_name") == "rcli_squad":
        raise UserError(f"{path} has roberta-cli's SQuAD span head, which stock fairseq has no "
                        "task for; export it with roberta-convert to-hf instead")
    for group, registry in (("task", TASK_DATACLASS_REGISTRY),
                            ("criterion", CRITERION_DATACLASS_REGISTRY),
                            ("optimizer", OPTIMIZER_DATACLASS_REGISTRY)):
        cfg[group] = _stock_group(cfg.get(group), registry)
    model = argparse.Namespace(**vars(cfg["model"])) if isinstance(cfg["model"], argparse.Namespace) \
        else argparse.Namespace(**cfg["model"])  # fairseq keeps a legacy model's args so
    if str(getattr(model, "arch", "")).startswith("rcli_"):
        model._name = model.arch = "roberta"  # every dimension is spelled out in the cfg
    cfg["model"] = model
    with staged_output(out) as staging:
        write_checkpoint(staging / CHECKPOINT, cfg, dict(state["model"]))
        copy_model_files(model_dir, staging)
        _copy_task_files(model_dir, staging)
        mark(staging, "to-fairseq", model_dir)
    return out


def _copy_task_files(model_dir, out):
    """A fine-tuned model's dictionaries of its task (input0/dict.txt, label/dict.txt: fairseq's
    sentence_prediction and sentence_ranking tasks load them) and its task manifest."""
    for sub in sorted(Path(model_dir).glob("input*")) + [Path(model_dir, "label")]:
        if (sub / "dict.txt").is_file():
            (out / sub.name).mkdir()
            shutil.copyfile(sub / "dict.txt", out / sub.name / "dict.txt")
    if Path(model_dir, checkpoints.TASK_MANIFEST).is_file():
        shutil.copyfile(Path(model_dir, checkpoints.TASK_MANIFEST), out / checkpoints.TASK_MANIFEST)


def _stock_group(group, registry):
    """A cfg group with fairseq's own name and only the fields of fairseq's dataclass for it
    (``registry``: fairseq's dataclasses of that kind; legacy groups keep their fields)."""
    if not group or not str(group.get("_name", "")).startswith("rcli_"):
        return group
    name = STOCK_NAMES.get(group["_name"])
    if name is None:
        raise UserError(f"{group['_name']} has no equivalent in stock fairseq; export to "
                        "Hugging Face instead (roberta-convert to-hf)")
    fields = registry[name].__dataclass_fields__ if name in registry else group
    return {**{k: v for k, v in group.items() if k in fields}, "_name": name}
