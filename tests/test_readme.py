"""README examples run, so they cannot go stale."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil

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


def _section(heading: str) -> str:
    """The README text under ``heading`` up to the next heading."""
    return re.split(r"\n#{2,3} ", README.split(f"\n{heading}\n", 1)[1], maxsplit=1)[0]


def _cli(args: list[str]):
    from typer.testing import CliRunner

    from screening.cli import app

    return CliRunner().invoke(app, args)


def test_commands_table_lists_every_command_and_option():
    import typer.main

    from screening.cli import app

    listed: dict[str, set[str]] = {}
    for name, usage in re.findall(r"^\| `screening ([a-z-]+)([^`]*)` \|", README, re.M):
        listed.setdefault(name, set()).update(re.findall(r"--[a-z-]+", usage))
    commands = typer.main.get_command(app).commands
    options = {name: {o for p in c.params for o in getattr(p, "opts", ()) if o.startswith("--") and o != "--help"} for name, c in commands.items()}
    assert listed == options


def test_what_you_get_is_the_output_of_its_command(monkeypatch):
    """Each shown line starts an output line, in order (table rules and lines shown as ``…`` left out)."""
    command, shown = re.search(r"```bash\n(.*?)\n```\n+```\n(.*?)```", _section("## What you get"), re.S).groups()
    monkeypatch.chdir(ROOT)
    result = _cli(shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    printed = iter(line.rstrip() for line in result.output.splitlines())
    for line in shown.splitlines():
        if line.strip("…"):
            assert any(out.startswith(line.split("…")[0]) for out in printed), line


def test_error_examples_are_what_the_cli_prints(tmp_path, monkeypatch):
    shown = re.search(r"e\.g\.\n\n```\n(.*?)\n```", README, re.S).group(1).splitlines()
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    trial = tmp_path / "rules" / "NCT04357600.yaml"
    trial.write_text(trial.read_text().replace("codes: hepatitis_c,", "codes: hepatitis_cc,", 1))
    patient = json.loads((ROOT / "patients/examples/P01-jakarta-cpb-si-eligible.json").read_text())
    patient["id"], patient["observations"][2] = "P7", {**patient["observations"][0], "unit": "mg/dx"}  # a bilirubin
    (tmp_path / "patients").mkdir()
    (tmp_path / "patients" / "x.json").write_text(json.dumps(patient))
    monkeypatch.chdir(tmp_path)
    printed = [_cli(["screen", "patients/x.json", *rules]).output.rstrip("\n") for rules in ([], ["--rules", str(ROOT / "rules")])]
    assert printed == shown


def test_watch_examples_are_lines_it_prints(monkeypatch):
    section = _section("### Watch mode")
    command = re.search(r"`screening (watch [^`]+)`", section).group(1)
    monkeypatch.chdir(ROOT)
    printed = _cli(shlex.split(command)).output.splitlines()
    shown = [line for block in re.findall(r"```\n(.*?)```", section, re.S) for line in block.splitlines()]
    assert shown and all(line in printed for line in shown)


def test_public_surface_names_every_public_name():
    import screening

    paragraph = README.split("The public surface is", 1)[1].split("\n\n", 1)[0]
    assert set(screening.__all__) - {"__version__"} <= set(re.findall(r"`(\w+)`", paragraph))
