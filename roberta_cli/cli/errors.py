"""Shared error handling for the console scripts: a user mistake is one line on stderr and exit
status 2 (argparse's convention), never a traceback.

    from roberta_cli.cli.errors import UserError, run_main

    def main(argv=None):
        run_main(lambda: _main(argv), "roberta-preprocess")

    $ roberta-preprocess missing.txt --name x
    roberta-preprocess: error: input missing.txt does not exist; check the path
"""
import argparse
import sys

from roberta_cli.errors import UserError

__all__ = ["UserError", "run_main", "EXIT_USAGE"]

EXIT_USAGE = 2  # the status argparse uses for usage errors


def run_main(fn, prog):
    """Call ``fn()``; a UserError or Ctrl-C becomes ``{prog}: error: {msg}`` on stderr and
    ``SystemExit(2)``. Anything else is a bug and keeps its traceback. Returns ``fn()``'s value."""
    try:
        return fn()
    except UserError as e:
        message = " ".join(str(e).split())  # always exactly one line
    except KeyboardInterrupt:
        message = "interrupted (Ctrl-C); run the command again to start over"
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_USAGE)


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too: ``<command>: error: <problem>; see <prog>
    --help`` (``<command>`` is the first word of prog, e.g. roberta-preprocess for its glue)."""

    def error(self, message):
        print(f"{self.prog.split()[0]}: error: {message}; see {self.prog} --help", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def positive_int(text):
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value
