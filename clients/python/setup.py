"""Builds the stubs from the contract into the wheel.

The `baton.v1` protos live at the repository's root (`../../proto`), so the
generated modules are written into the build tree, never into `src/`.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).parent / "src" / "baton_client"))
from _codegen import generate  # noqa: E402


class BuildWithStubs(build_py):
    """`build_py` that also generates `baton_client._generated`."""

    def run(self):
        super().run()
        generate(Path(self.build_lib) / "baton_client")


setup(cmdclass={"build_py": BuildWithStubs})
