"""The one exception type for mistakes a user can fix (a bad path, a bad flag combination,
a corpus that is not UTF-8). Plain library code raises it; the command-line front ends
(roberta_cli.cli.errors.run_main) turn it into one line on stderr and exit code 2:

    roberta-preprocess: error: input corpus/ does not exist; check the path
"""


class UserError(Exception):
    """A problem with the user's input or flags. ``str(error)`` is the whole message, written
    as ``<problem>; <fix>`` on one line, without the program name."""
