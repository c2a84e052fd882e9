"""The package's import rules (setup.cfg's [importlinter] contracts: layers, no cycles) and no
function-level import of the package's own modules, on the code as it is and on a copy with a
planted upward import, which they must catch."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "roberta_cli"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root):
    """lint-imports with the repository's contracts, on the package found under ``root``."""
    return subprocess.run([str(LINT_IMPORTS), "--config", str(REPO / "setup.cfg"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_contracts_hold():
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_a_planted_upward_import_breaks_them(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "roberta_cli", ignore=shutil.ignore_patterns("__pycache__"))
    corpus = tmp_path / "roberta_cli" / "data" / "corpus.py"
    corpus.write_text(corpus.read_text() + "\nfrom roberta_cli.cli import train  # noqa\n")
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0 and "roberta_cli layers BROKEN" in proc.stdout, proc.stdout[-3000:]
    assert "roberta_cli.data.corpus -> roberta_cli.cli.train" in proc.stdout


def own_imports_inside_functions(path):
    """(line, module) of each import of roberta_cli that is not at module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("roberta_cli"):
                found.append((node.lineno, node.module))
            elif isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names if a.name.startswith("roberta_cli")]
    return found


def test_no_function_level_imports_of_the_package():
    """A lazy import of the package's own module hides a layering problem: every one is at the
    top of its module, where the contracts see it."""
    found = {str(p.relative_to(REPO)): own_imports_inside_functions(p)
             for p in sorted(PACKAGE.rglob("*.py"))}
    assert {p: f for p, f in found.items() if f} == {}
    planted = PACKAGE.parent / "planted.py"  # the check itself finds one
    try:
        planted.write_text("def f():\n    from roberta_cli import hub\n")
        assert own_imports_inside_functions(planted) == [(2, "roberta_cli")]
    finally:
        planted.unlink()
