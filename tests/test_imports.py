"""Every module imports first in a fresh interpreter. The installed .pth plugin imports
roberta_cli.tasks as soon as fairseq is imported, so a data module that imports fairseq runs
the tasks' imports while it is itself half-initialized; an import of a name from it there fails
only when that module is the program's first."""
import pkgutil
import subprocess
import sys

import pytest

import roberta_cli.data

DATA_MODULES = sorted(f"roberta_cli.data.{m.name}"
                      for m in pkgutil.iter_modules(roberta_cli.data.__path__))
PLUGIN_MODULES = ["roberta_cli.tasks", "roberta_cli.criterions", "roberta_cli.models"]


def test_every_data_module_is_listed():
    assert {"roberta_cli.data.blocks", "roberta_cli.data.masking",
            "roberta_cli.data.pairs"} <= set(DATA_MODULES)


@pytest.mark.parametrize("module", DATA_MODULES + PLUGIN_MODULES)
def test_module_imports_first(module):
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
