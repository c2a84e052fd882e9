"""Installs roberta_cli plus ``roberta_cli_compat.pth``: a one-line startup hook that imports
roberta_cli.compat (standard library only until fairseq is imported), so that vanilla
``fairseq-train`` and ``RobertaModel.from_pretrained`` work on Python >= 3.11 and torch >= 2.6
in the environment where roberta-cli is installed, with or without ``-e``."""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "roberta_cli_compat.pth"


class BuildPyWithPth(build_py):  # regular wheels: the .pth at the root of site-packages
    def run(self):
        super().run()
        self.copy_file(PTH, str(Path(self.build_lib, PTH)), preserve_mode=0)


class EditableWheelWithPth(editable_wheel):  # `pip install -e .` (setuptools >= 64)
    def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):
        outputs = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
        self.copy_file(PTH, str(Path(unpacked_wheel, PTH)), preserve_mode=0)
        return outputs


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
