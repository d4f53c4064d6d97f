"""The CI examples (a GitHub Actions workflow, the reusable composite action, a GitLab CI
job) parse as YAML with the keys their CI systems need, and every `edgezoo` command in them
is a valid invocation of this edgezoo's CLI (options and arguments parsed by click)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from edgezoo.cli.main import cli

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "action.yml", ROOT / "examples" / "github" / "edgezoo-gate.yml", ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"]
SAMPLES = {"model": "digits-cnn", "target": "raspberrypi", "baseline": "baselines/digits-cnn-raspberrypi.json",
           "bundle": "dist/digits-cnn-raspberrypi-int8", "precision": "int8"}


def _scripts(node):
    """Every shell script in a workflow/action (`run:`) or a GitLab job (`script:` lists)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                yield value
            elif key in ("script", "after_script", "before_script") and isinstance(value, list):
                yield "\n".join(value)
            else:
                yield from _scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _scripts(item)


def _sample(name: str) -> str:
    name = name.lower().replace("-", "_")
    for key, value in SAMPLES.items():
        if key in name:
            return value
    return "1.0"


def edgezoo_commands(text: str) -> list[list[str]]:
    text = text.replace("\\\n", " ")
    text = re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: _sample(m.group(1).split(".")[-1]), text)
    text = re.sub(r"\$\{(\w+):\+[^}]*\}", "", text)  # optional flags (${VAR:+--flag "$VAR"}) left out
    text = re.sub(r"\$\{?(\w+)\}?", lambda m: _sample(m.group(1)), text)
    out = []
    for line in text.splitlines():
        line = line.strip().split(" > ")[0].split(" || ")[0]
        if line.startswith("edgezoo "):
            out.append(shlex.split(line)[1:])
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_parses_and_its_commands_are_valid(path):
    doc = yaml.safe_load(path.read_text())
    if path.name == "action.yml":
        assert doc["runs"]["using"] == "composite" and {"model", "target", "baseline"} <= set(doc["inputs"])
        assert all("shell" in s for s in doc["runs"]["steps"] if "run" in s)  # composite steps must name their shell
    elif path.name == ".gitlab-ci.yml":
        job = doc["edgezoo-gate"]
        assert job["artifacts"]["reports"]["junit"] == "gate.xml" and job["parallel"]["matrix"]
    else:
        assert "jobs" in doc and doc["jobs"]["gate"]["strategy"]["matrix"]["model"]
    commands = [c for s in _scripts(doc) for c in edgezoo_commands(s)]
    assert {c[0] for c in commands} >= {"export", "gate"}, commands
    for args in commands:
        name, rest = args[0], args[1:]
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, f"{path.name}: unknown command edgezoo {name}"
        try:
            command.make_context(name, list(rest))  # parses options and arguments, runs nothing
        except click.UsageError as exc:
            pytest.fail(f"{path.name}: `edgezoo {' '.join(args)}` is not valid: {exc.format_message()}")


def test_the_checker_catches_an_invalid_command():
    [args] = edgezoo_commands("edgezoo gate dist/x --baseline b.json --max-accuracy-dorp 1")
    with pytest.raises(click.UsageError):
        cli.get_command(click.Context(cli), "gate").make_context("gate", args[1:])
