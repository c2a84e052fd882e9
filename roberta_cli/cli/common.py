"""What every command shares: one parser class whose usage errors are one line, help that
shows defaults and the ``--`` pass-through, and one way to turn a user's mistake into one line
on stderr and exit status 2 (argparse's convention), never a traceback.

    $ roberta-preprocess text missing.txt --name x
    roberta-preprocess: error: input missing.txt does not exist; check the path
"""
import argparse
import os
import sys

from roberta_cli.errors import UserError

EXIT_USAGE = 2  # the status argparse uses for usage errors


def run_main(fn, prog, interrupted="run the command again to start over"):
    """Call ``fn()``; a UserError or Ctrl-C becomes ``{prog}: error: {msg}`` on stderr and
    ``SystemExit(2)``. Anything else is a bug and keeps its traceback. Returns ``fn()``'s value."""
    try:
        return fn()
    except UserError as e:
        message = " ".join(str(e).split())  # always exactly one line
    except KeyboardInterrupt:
        message = f"interrupted (Ctrl-C); {interrupted}"
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        raise SystemExit(1) from None
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_USAGE)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; every option's default shown, unless it has none
    (None, off) or its help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or "%(default)" in text or "default" in text
                or action.default in (None, False, argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``<command>: error: <problem>; see <prog> --help``,
    <command> being the first word of prog) and, with ``passthrough="fairseq-train flags"``, a
    usage line that ends in ``[-- FLAGS ...]``: what follows ``--`` goes to fairseq."""

    def __init__(self, *args, passthrough=None, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.passthrough = passthrough

    def error(self, message):
        print(f"{self.prog.split()[0]}: error: {message}; see {self.prog} --help", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)

    def format_usage(self):
        return self._with_passthrough(super().format_usage())

    def format_help(self):
        return self._with_passthrough(super().format_help())

    def _with_passthrough(self, text):
        if not self.passthrough:
            return text
        usage, blank, rest = text.partition("\n\n")  # the usage block ends at the first blank line
        usage = f"{usage.rstrip()} [-- {self.passthrough} ...]"
        return f"{usage}\n\n{rest}" if blank else usage + "\n"


def add_device_arguments(p):
    """--device and --precision, as roberta-train and roberta-finetune take them."""
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 where the hardware has it (CPU autocast, GPU), else fp32")


def split_passthrough(argv):
    """(our arguments, the flags after the first ``--``)."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def positive_int(text):
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def positive_float(text):
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def non_negative_int(text):
    """argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def int_list(text):
    """argparse type: distinct comma-separated integers, e.g. 1,2,3."""
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        values = []
    if not values or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of distinct "
                                         "integers (e.g. 1,2,3)")
    return values


def name_list(text):
    """argparse type: comma-separated names, e.g. SST-2,MRPC."""
    return [t for t in text.split(",") if t]
