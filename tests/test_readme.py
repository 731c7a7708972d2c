"""README examples run, so they cannot go stale."""

from __future__ import annotations

import os
import re

import pytest

from .conftest import ROOT

README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize("block", PYTHON_BLOCKS)
def test_python_examples_run(block, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - our own README


def test_first_command_screens_a_bundled_patient():
    first = re.findall(r"```bash\n(.*?)```", README, re.S)[0]
    patient = re.search(r"screening screen (\S+)", first).group(1)
    assert (ROOT / patient).is_file()
    assert "pip install" in first and "--as-of" in first


def test_test_command_is_what_ci_runs():
    second = re.findall(r"```bash\n(.*?)```", README, re.S)[1].strip()
    assert second in (ROOT / ".ci" / "run").read_text()
    assert os.access(ROOT / ".ci" / "run", os.R_OK)
