"""Fine-tuning data: GLUE task files, your own TSV/CSV/JSONL, RACE -> rows in file order.
Plain code: no fairseq, no argparse, no printing.

    from roberta_cli.data import tasks
    task = tasks.get_task("sst-2")                       # case-insensitive; TASKS["SST-2"]
    dev = tasks.read_split(task, "../shared/data/glue", "valid")
    dev.texts[0], dev.labels[0]         # (("it 's a charming and often affecting journey .",), '1')
    task.labels.index(dev.labels[0])                     # the class index the model predicts
    tasks.read_custom("mine.jsonl", ["text"], "label")   # your own file
    tasks.read_race("RACE")                              # {"train": SplitData, "valid": ...}
    tasks.rows_of("data-bin/SST-2", "valid")             # a preprocessed split's rows, again

``TASKS`` is the one table of the GLUE tasks: for every split the file, its header (or the
column names of a file without one), the text column(s) and the label column (None: the
unlabelled test files, whose columns differ: an index first and no label), plus the task's
fixed, ordered label set (label index i == labels[i], the order of label/dict.txt in the
binarized data), its kind and metrics. Fine-tuning settings per task live in
roberta_cli.presets.GLUE under the same task names. One reader (read_split) serves every task.

Split names are fairseq's: train, valid (GLUE's dev), valid1 (MNLI dev_mismatched), test, test1
(MNLI test_mismatched); ``Task.files`` maps them to GLUE's file names.

Reading rules: UTF-8 (a byte-order mark is dropped, as in MRPC); GLUE and custom .tsv files are
read with csv.QUOTE_NONE (fields are split on tabs only: GLUE sentences contain unbalanced
quotes); .csv files with standard CSV quoting; .jsonl one JSON object per line. Blank lines are
skipped. Texts are stripped of surrounding whitespace (as fairseq's BPE encoder script does).
Rows keep file order: row i of a split is the i-th data row of its file, and
``SplitData.lines[i]`` is its line number, so predictions can be matched back to the file.
"""
import csv
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from roberta_cli.data import corpus
from roberta_cli.data import manifest as data_manifest
from roberta_cli.errors import UserError

SPLITS = ("train", "valid", "valid1", "test", "test1")  # fairseq split names, in output order
KINDS = ("classification", "regression", "multiple_choice")
RESERVED_LABELS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # fairseq Dictionary specials
TABLE_FORMATS = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl",
                 ".ndjson": "jsonl"}
RACE_CHOICES = 4
RACE_ANSWERS = "ABCD"

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long texts (articles) in custom CSV files


@dataclass(frozen=True)
class FileSpec:
    """Where one split's fields are. ``text`` and ``label`` are column names: of the header
    row, or of ``names`` for a file without a header (CoLA train/dev)."""

    file: str
    text: Tuple[str, ...]
    label: Optional[str] = None  # None: unlabelled (GLUE's test files)
    names: Optional[Tuple[str, ...]] = None  # a file without a header: its column names

    @property
    def header(self) -> bool:
        return self.names is None


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "classification" | "regression"
    labels: Tuple[str, ...]  # classification: fixed order, index i == labels[i]; () regression
    metrics: Tuple[str, ...]  # the first selects checkpoints; the others are reported too
    files: Dict[str, FileSpec]  # split name -> file
    label_meanings: Dict[str, str] = field(default_factory=dict)
    label_range: Optional[Tuple[float, float]] = None  # regression: scale of the raw scores
    skip_malformed: bool = False  # drop train/dev rows with a wrong column count (fairseq QQP)
    folder: Optional[str] = None  # its folder in the GLUE download, when not its name
    predicted_by: Optional[str] = None  # a test-only task: scored by this task's model

    @property
    def metric(self) -> str:
        return self.metrics[0]

    @property
    def num_classes(self) -> int:  # fairseq --num-classes
        return len(self.labels) if self.kind == "classification" else 1

    @property
    def num_inputs(self) -> int:  # input0 only, or input0 + input1
        return len(next(iter(self.files.values())).text)

    @property
    def folder_name(self) -> str:
        return self.folder or self.name

    @property
    def valid_names(self) -> Dict[str, str]:
        """{"valid": "dev"} (MNLI: also {"valid1": "dev_mismatched"})."""
        return {s: Path(f.file).stem for s, f in self.files.items() if s.startswith("valid")}


def _glue(name, kind, labels, metrics, text, label, test_text=None, files=None, **extra):
    """A table row for the usual layout: train.tsv/dev.tsv with a header naming ``text`` and
    ``label``, test.tsv with a header naming ``test_text`` (default ``text``) and no label."""
    files = files or {"train": "train.tsv", "valid": "dev.tsv", "test": "test.tsv"}
    specs = {split: FileSpec(file, text if not split.startswith("test") else (test_text or text),
                             None if split.startswith("test") else label)
             for split, file in files.items()}
    return Task(name, kind, tuple(labels), tuple(metrics), specs, **extra)


COLA_COLUMNS = ("source", "label", "orig_label", "sentence")  # train/dev have no header

TASKS: Dict[str, Task] = {
    "CoLA": Task(
        "CoLA", "classification", ("0", "1"), ("mcc", "accuracy"),
        {"train": FileSpec("train.tsv", ("sentence",), "label", names=COLA_COLUMNS),
         "valid": FileSpec("dev.tsv", ("sentence",), "label", names=COLA_COLUMNS),
         "test": FileSpec("test.tsv", ("sentence",))},  # header: index, sentence
        label_meanings={"0": "unacceptable", "1": "acceptable"}),
    "SST-2": _glue("SST-2", "classification", ("0", "1"), ("accuracy",), ("sentence",), "label",
                   label_meanings={"0": "negative", "1": "positive"}),
    "MRPC": _glue("MRPC", "classification", ("0", "1"), ("f1", "accuracy"),
                  ("#1 String", "#2 String"), "Quality",  # test: index, #1 ID, ... no Quality
                  label_meanings={"0": "not_equivalent", "1": "equivalent"}),
    "STS-B": _glue("STS-B", "regression", (), ("pearson", "spearman"),
                   ("sentence1", "sentence2"), "score", label_range=(0.0, 5.0)),
    "QQP": _glue("QQP", "classification", ("0", "1"), ("f1", "accuracy"),
                 ("question1", "question2"), "is_duplicate",  # test: id, question1, question2
                 label_meanings={"0": "not_duplicate", "1": "duplicate"}, skip_malformed=True),
    "MNLI": _glue("MNLI", "classification", ("contradiction", "entailment", "neutral"),
                  ("accuracy",), ("sentence1", "sentence2"), "gold_label",
                  files={"train": "train.tsv", "valid": "dev_matched.tsv",
                         "valid1": "dev_mismatched.tsv", "test": "test_matched.tsv",
                         "test1": "test_mismatched.tsv"}),
    "QNLI": _glue("QNLI", "classification", ("entailment", "not_entailment"), ("accuracy",),
                  ("question", "sentence"), "label"),
    "RTE": _glue("RTE", "classification", ("entailment", "not_entailment"), ("accuracy",),
                 ("sentence1", "sentence2"), "label"),
    # GLUE's diagnostic set: MNLI-style pairs, no labels, scored by an MNLI model (AX.tsv)
    "AX": Task("AX", "classification", ("contradiction", "entailment", "neutral"), ("accuracy",),
               {"test": FileSpec("diagnostic.tsv", ("sentence1", "sentence2"))},
               folder="diagnostic", predicted_by="MNLI"),
}


@dataclass
class SplitData:
    """One split's rows in file order. ``texts[i]``: the row's 1 or 2 texts (RACE: the article
    and the 4 question+option texts); ``labels[i]``: its label string (regression: the score as
    written; RACE: "0".."3"), None for an unlabelled split; ``lines[i]``: its line number in
    ``source`` (RACE: the question's index in its file); ``ids[i]``: RACE "file#question"."""

    name: str
    source: str
    texts: List[Tuple[str, ...]] = field(default_factory=list)
    labels: Optional[List[str]] = None
    lines: List[int] = field(default_factory=list)
    skipped: int = 0  # malformed rows dropped (QQP train/dev only)
    ids: Optional[List[str]] = None

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def __len__(self):
        return len(self.texts)


# --- the table ------------------------------------------------------------------------------------
def get_task(name: str) -> Task:
    """The TASKS row for ``name``, any case ("sst-2", "mnli"); UserError listing the choices."""
    for task_name, task in TASKS.items():
        if task_name.lower() == str(name).lower():
            return task
    raise UserError(f"unknown GLUE task {name!r}; choose one of {', '.join(TASKS)} (or all)")


def task_dir(task: Task, glue_dir) -> Path:
    """``glue_dir/<task>`` (any case), or ``glue_dir`` itself when it holds the task's files."""
    glue_dir = Path(glue_dir)
    if not glue_dir.is_dir():
        raise UserError(f"--glue-dir {glue_dir} is not a directory; pass the GLUE folder "
                        "(with CoLA/, SST-2/, ...) as written by download_glue_data.py")
    for child in sorted(glue_dir.iterdir()):
        if child.is_dir() and child.name.lower() == task.folder_name.lower():
            return child
    if any((glue_dir / spec.file).is_file() for spec in task.files.values()):
        return glue_dir
    raise UserError(f"{glue_dir} has no {task.folder_name} folder; pass --glue-dir the GLUE "
                    f"folder that holds {task.folder_name}/ (or that folder itself)")


def present_tasks(glue_dir) -> List[Task]:
    """The tasks that have a folder with at least one of their files under ``glue_dir``."""
    glue_dir = Path(glue_dir)
    folders = {p.name.lower(): p for p in glue_dir.iterdir() if p.is_dir()} \
        if glue_dir.is_dir() else {}
    found = []
    for task in TASKS.values():
        folder = folders.get(task.folder_name.lower())
        if folder and any((folder / spec.file).is_file() for spec in task.files.values()):
            found.append(task)
    return found


def read_split(task, glue_dir, split: str, limit: Optional[int] = None) -> SplitData:
    """One split of a GLUE task (``task``: a Task or its name; ``split``: train, valid, valid1,
    test or test1) in file order, checked against the table; at most ``limit`` rows."""
    task = task if isinstance(task, Task) else get_task(task)
    if split not in task.files:
        raise UserError(f"{task.name} has no {split!r} split; it has {', '.join(task.files)}")
    spec = task.files[split]
    path = task_dir(task, glue_dir) / spec.file
    if not path.is_file():
        raise UserError(f"{path} does not exist; {task.name}'s {split} split is "
                        f"{task.folder_name}/{spec.file} in the GLUE folder")
    data = SplitData(split, str(path.resolve()), labels=[] if spec.label else None)
    columns = None
    for line, fields in _tsv_rows(path):
        if columns is None:
            if spec.header:
                columns = _find_columns(path, fields, spec.text + ((spec.label,) * bool(spec.label)),
                                        f"{task.name}'s {spec.file}")
                ncols = len(fields)
                continue
            columns = [spec.names.index(c) for c in spec.text + ((spec.label,) * bool(spec.label))]
            ncols = len(spec.names)
        if len(fields) != ncols:
            # only labelled rows may go: the GLUE server numbers test rows by position
            if task.skip_malformed and spec.label:
                data.skipped += 1
                continue
            expected = ", ".join(spec.names) if not spec.header else "as in its header line"
            raise UserError(f"{path} line {line} has {len(fields)} tab-separated columns, "
                            f"expected {ncols} ({expected}); check that it is {task.name}'s "
                            f"{spec.file} from GLUE")
        values = [fields[c] for c in columns]
        if spec.label:
            label = values.pop().strip()
            _check_label(task, label, path, line)
            data.labels.append(label)
        data.texts.append(tuple(v.strip() for v in values))
        data.lines.append(line)
        if limit is not None and len(data.texts) >= limit:
            break
    if not data.texts:
        raise UserError(f"{path} has no data rows{' after its header' * spec.header}; "
                        f"pass {task.name}'s {spec.file} with its examples")
    return data


def read_task(task, glue_dir, limit: Optional[int] = None) -> Dict[str, SplitData]:
    """Every split of ``task`` whose file exists, in SPLITS order. UserError if none does, or
    if only unlabelled (test) files are there."""
    task = task if isinstance(task, Task) else get_task(task)
    folder = task_dir(task, glue_dir)
    present = [s for s in task.files if (folder / task.files[s].file).is_file()]
    if task.predicted_by:  # a test-only task (AX)
        if not present:
            raise UserError(f"{folder} has no {', '.join(f.file for f in task.files.values())}; "
                            "pass the GLUE folder as written by download_glue_data.py")
        return {s: read_split(task, glue_dir, s, limit) for s in present}
    if not any(task.files[s].label for s in present):
        raise UserError(f"{folder} has none of {task.name}'s labelled files "
                        f"({', '.join(task.files[s].file for s in task.files if task.files[s].label)}); "
                        "pass the GLUE folder as written by download_glue_data.py")
    return {s: read_split(task, glue_dir, s, limit) for s in present}


def _check_label(task: Task, label: str, path, line):
    if task.kind == "classification":
        if label not in task.labels:
            raise UserError(f"{path} line {line}: label {label!r} is not one of {task.name}'s "
                            f"labels ({', '.join(task.labels)}); check that it is {task.name}'s "
                            "file from GLUE")
    elif not _is_float(label):
        raise UserError(f"{path} line {line}: score {label!r} is not a number; {task.name} is "
                        "a regression task with numeric scores")


def _is_float(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _find_columns(path, header, wanted, what) -> List[int]:
    header = [c.strip() for c in header]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise UserError(f"{path} has columns {', '.join(map(repr, header))}, without "
                        f"{', '.join(map(repr, missing))}, which {what} needs; check that the "
                        "folder holds the right task's files (with their header line)")
    return [header.index(c) for c in wanted]


def _first_bad_utf8_line(path) -> int:
    """The line of the first byte that is not UTF-8 (the reader decodes ahead, in blocks)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return raw.count(b"\n", 0, e.start) + 1
    return 0


def _tsv_rows(path, delimiter="\t", quoting=csv.QUOTE_NONE):
    """(line number, fields) of the non-blank rows of a delimited UTF-8 file; a quoted row
    spanning lines gets the line it starts on."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=quoting != csv.QUOTE_NONE)
        try:
            start = 1
            for fields in reader:
                if fields and any(fields):
                    yield start, fields
                start = reader.line_num + 1
        except UnicodeDecodeError as e:
            raise UserError(f"{path} is not UTF-8 (line {_first_bad_utf8_line(path)}: "
                            f"{e.reason}); save it as UTF-8") from None
        except csv.Error as e:
            raise UserError(f"{path} line {reader.line_num} cannot be read as "
                            f"{'CSV' if delimiter == ',' else 'tab-separated text'} ({e}); "
                            "check the file (quoting, NUL bytes)") from None


# --- your own files --------------------------------------------------------------------------------
def table_format(path) -> str:
    fmt = TABLE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown file type {Path(path).suffix or '(no extension)'!r}; "
                        f"use one of {', '.join(TABLE_FORMATS)} (TSV/CSV with a header row, "
                        "JSON lines with keys)")
    return fmt


def _wanted_columns(path, fmt, found, text_columns, label_column, label_required):
    """The text columns, then the label column if the file has it; a UserError naming the
    columns (keys) the file has when one asked for is missing."""
    missing = [c for c in text_columns if c not in found]
    has_label = label_column is not None and label_column in found
    if label_column is not None and not has_label and label_required:
        missing.append(label_column)
    if missing:
        kind = "keys" if fmt == "jsonl" else "columns"
        raise UserError(f"{path} has no {kind} {', '.join(map(repr, missing))}; its "
                        f"{kind} are {', '.join(map(repr, found))}; pass "
                        "--text-columns/--label-column names from those")
    return list(text_columns) + [label_column] * has_label


def _json_values(path, line, obj, wanted):
    """The ``wanted`` keys of one JSONL object, as strings."""
    absent = [c for c in wanted if c not in obj]
    if absent:
        raise UserError(f"{path} line {line} has no key {absent[0]!r}; every line "
                        f"needs {', '.join(map(repr, wanted))}")
    values = [obj[c] for c in wanted]
    if any(v is None or isinstance(v, (dict, list)) for v in values):
        raise UserError(f"{path} line {line}: {', '.join(map(repr, wanted))} must be "
                        "strings or numbers (found null, a list or an object)")
    return [str(v) for v in values]


def read_custom(path, text_columns: Sequence[str], label_column: Optional[str],
                regression: bool = False, name: str = "train", limit: Optional[int] = None,
                label_required: bool = True) -> SplitData:
    """Your own TSV/CSV (header row) or JSONL (objects) file in file order. ``text_columns``:
    1 or 2 column names/keys; ``label_column``: None, or missing from an unlabelled file when
    ``label_required`` is False (a test file). Labels are strings (str() of JSON values);
    regression scores must be numbers."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{name} file {path} does not exist; check the path")
    fmt = table_format(path)
    text_columns = list(text_columns)
    if not 1 <= len(text_columns) <= 2:
        raise UserError(f"--text-columns names {len(text_columns)} columns; give one or two "
                        "(a sentence, or a sentence pair)")
    data = SplitData(name, str(path.resolve()))
    wanted = None
    for line, row in _custom_rows(path, fmt):
        if wanted is None:  # the header (tsv/csv) or the first object's keys (jsonl)
            found = list(row) if fmt == "jsonl" else [c.strip() for c in row]
            wanted = _wanted_columns(path, fmt, found, text_columns, label_column, label_required)
            data.labels = [] if len(wanted) > len(text_columns) else None
            if fmt != "jsonl":  # a header: the data starts on the next line
                index, ncols = [found.index(c) for c in wanted], len(found)
                continue
        if fmt == "jsonl":
            values = _json_values(path, line, row, wanted)
        else:
            if len(row) != ncols:
                raise UserError(f"{path} line {line} has {len(row)} columns, expected {ncols} "
                                f"as in its header; check the {fmt.upper()} file")
            values = [row[i] for i in index]
        if data.labels is not None:
            label = values.pop().strip()
            if regression and not _is_float(label):
                raise UserError(f"{path} line {line}: {label_column} {label!r} is not a number; "
                                "--regression needs numeric labels")
            if not regression:
                check_label_string(label, path, line)
            data.labels.append(label)
        data.texts.append(tuple(v.strip() for v in values))
        data.lines.append(line)
        if limit is not None and len(data.texts) >= limit:
            break
    if not data.texts:
        raise UserError(f"{name} file {path} has no data rows; pass a file with examples")
    return data


def check_label_string(label: str, path, line):
    """A class label must be usable as a fairseq Dictionary symbol."""
    if not label or label in RESERVED_LABELS or "\n" in label or "\r" in label:
        raise UserError(f"{path} line {line}: label {label!r} cannot be a class name (empty, a "
                        f"line break, or one of fairseq's {', '.join(RESERVED_LABELS)}); "
                        "rename it")


def _custom_rows(path, fmt):
    if fmt == "tsv":
        yield from _tsv_rows(path)
    elif fmt == "csv":
        yield from _tsv_rows(path, ",", csv.QUOTE_MINIMAL)
    else:
        try:
            with open(path, encoding="utf-8-sig") as f:
                yield from corpus.json_objects(path, f)
        except UnicodeDecodeError as e:
            raise UserError(f"{path} is not UTF-8 ({e.reason}); save it as UTF-8") from None


def label_order(labels) -> List[str]:
    """The class order of a custom task: sorted, numerically when every label is an integer."""
    labels = set(labels)
    if all(re.fullmatch(r"-?\d+", label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


# --- RACE ------------------------------------------------------------------------------------------
RACE_SPLITS = {"train": "train", "dev": "valid", "test": "test"}  # folder -> split name
RACE_LEVELS = ("middle", "high")  # fairseq's order; test/middle -> test, test/high -> test1


def race_sources(race_dir) -> Dict[str, Tuple[Path, List[Path]]]:
    """{split: (folder, sorted JSON files)} of a RACE folder: DIR/{train,dev,test}/{middle,high}/
    (the release) or DIR/{train,dev,test}/ holding the JSON files directly."""
    race_dir = Path(race_dir)
    if not race_dir.is_dir():
        raise UserError(f"--race-dir {race_dir} is not a directory; pass the RACE folder with "
                        "train/, dev/ and test/")
    out = {}
    for folder, split in RACE_SPLITS.items():
        base = race_dir / folder
        if not base.is_dir():
            continue
        levels = [base / lv for lv in RACE_LEVELS if (base / lv).is_dir()]
        if not levels:
            groups = [(base, _json_files(base))]
        elif split == "test":  # fairseq: test = middle, test1 = high
            groups = [(lv, _json_files(lv)) for lv in levels]
        else:
            groups = [(base, [f for lv in levels for f in _json_files(lv)])]
        for i, (where, files) in enumerate(groups):
            if not files:
                raise UserError(f"{where} has no RACE files; each question set is one JSON "
                                "file ({\"article\", \"questions\", \"options\", \"answers\"})")
            out[split + (str(i) if i else "")] = (where, files)
    if "train" not in out and "valid" not in out:
        raise UserError(f"{race_dir} has no train/ or dev/ folder; pass the RACE folder with "
                        "train/, dev/ and test/ (each with middle/ and high/, or the JSON files)")
    return out


def _json_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def read_race(race_dir, limit: Optional[int] = None) -> Dict[str, SplitData]:
    """Every RACE split: texts (article, 4 x question+option, built as fairseq's
    preprocess_RACE.py builds them), labels "0".."3", ids "relative/file#question"."""
    race_dir = Path(race_dir)
    out = {}
    for split, (where, files) in race_sources(race_dir).items():
        data = SplitData(split, str(where.resolve()), labels=[], ids=[])
        for path in files:
            for q, (texts, label) in enumerate(_race_file(path)):
                data.texts.append(texts)
                data.labels.append(label)
                data.lines.append(q)
                data.ids.append(f"{path.relative_to(race_dir).as_posix()}#{q}")
                if limit is not None and len(data.texts) >= limit:
                    break
            if limit is not None and len(data.texts) >= limit:
                break
        if not data.texts:
            raise UserError(f"{where} has RACE files but no questions; pass files with questions")
        out[split] = data
    return out


def _race_file(path: Path):
    try:
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a RACE JSON file ({e}); each file is one JSON object "
                        "with article, questions, options and answers") from None
    keys = ("article", "questions", "options", "answers")
    if not isinstance(obj, dict) or any(k not in obj for k in keys):
        found = ", ".join(obj) if isinstance(obj, dict) else type(obj).__name__
        raise UserError(f"{path} is not a RACE file: it needs the keys {', '.join(keys)} "
                        f"(found {found})")
    questions, options, answers = obj["questions"], obj["options"], obj["answers"]
    if not all(isinstance(v, list) for v in (questions, options, answers)):
        raise UserError(f"{path}: questions, options and answers must be lists (one entry per "
                        "question); check the RACE file")
    if not len(questions) == len(options) == len(answers):
        raise UserError(f"{path} has {len(questions)} questions, {len(options)} option lists "
                        f"and {len(answers)} answers; RACE gives one of each per question")
    article = _squash(str(obj["article"]))
    for q, (question, opts, answer) in enumerate(zip(questions, options, answers)):
        if not isinstance(opts, list):
            raise UserError(f"{path} question {q}: options entry is {type(opts).__name__}, "
                            f"not a list; RACE gives {RACE_CHOICES} option texts per question")
        if len(opts) != RACE_CHOICES:
            raise UserError(f"{path} question {q} has {len(opts)} options; RACE questions have "
                            f"exactly {RACE_CHOICES}")
        if answer not in tuple(RACE_ANSWERS):
            raise UserError(f"{path} question {q} has answer {answer!r}; answers are one of "
                            f"{', '.join(RACE_ANSWERS)}")
        texts = [article]
        for option in opts:
            question, option = str(question), str(option)
            qa = question.replace("_", option) if "_" in question else f"{question} {option}"
            texts.append(_squash(qa))
        yield tuple(texts), str(RACE_ANSWERS.index(answer))


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --- the binarized directory -----------------------------------------------------------------------
def load_task_manifest(data_dir) -> dict:
    """manifest.json of a ``roberta-preprocess glue|custom|race|squad`` output directory."""
    return data_manifest.read(data_dir, data_manifest.TASK_FORMAT, "fine-tuning data",
                              "roberta-preprocess glue|custom|race|squad")


def rows_of(data_dir, split: str) -> SplitData:
    """The rows of ``split`` of a ``roberta-preprocess glue|custom|race`` output directory, read
    again from the source file its manifest records: the same rows in the same order as the
    binarized datasets (row i of input0/{split} is ``rows_of(...).texts[i]``)."""
    manifest = load_task_manifest(data_dir)
    if split not in manifest["splits"]:
        raise UserError(f"{data_dir} has no {split!r} split; it has "
                        f"{', '.join(manifest['splits'])}")
    info, options = manifest["splits"][split], manifest.get("options", {})
    limit = options.get("limit")
    if manifest["task"] in TASKS:
        data = read_split(manifest["task"], Path(info["source"]).parent, split, limit)
    elif manifest["kind"] == "multiple_choice":
        data = read_race(options["race_dir"], limit)[split]
    else:
        data = read_custom(info["source"], options["text_columns"], options["label_column"],
                           manifest["kind"] == "regression", split, limit,
                           label_required=info["labelled"])
    if len(data) != info["rows"]:
        raise UserError(f"{info['source']} now has {len(data)} rows where {data_dir} was made "
                        f"from {info['rows']}; it changed since: run roberta-preprocess again")
    return data
