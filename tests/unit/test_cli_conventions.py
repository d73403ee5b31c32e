"""Every ``ivr`` command is conventional: help for it and each option, defaults shown, and a
file it needs that is not there named as "no such file" (exit 2), never a traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ivr.cli import _parser, main
from ivr.cli_conventions import commands

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [path for path, _ in commands(_parser())]


def test_the_walk_finds_the_commands_of_every_level() -> None:
    for expected in [(), ("serve",), ("prompts", "build"), ("lab",), ("lab", "call")]:
        assert expected in COMMANDS
    assert len(COMMANDS) > 25


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(("ivr", *p)))
def test_help_of_every_command(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: {' '.join(('ivr', *path))}")
    parser = dict(commands(_parser()))[path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            assert helped == set(action.choices), f"commands without help: {action.choices}"
        else:
            names = "/".join(action.option_strings) or action.dest
            assert action.help, f"ivr {' '.join(path)}: {names} has no help"
            assert names.split("/")[0] in shown


def test_defaults_are_shown_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "caller id (default: 5550100)" in shown
    assert "--json print the call record as JSON --caller" in shown  # no "(default: False)"
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default UTC) --json" in shown  # the help says its default: not twice
    with pytest.raises(SystemExit):
        main(["stt", "--help"])  # a command that asked for another formatter
    shown = " ".join(capsys.readouterr().out.split())
    assert "the recogniser (default: pocketsphinx)" in shown


def test_a_paragraph_is_wrapped_and_a_layout_kept(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["test", "--help"])  # its description is one paragraph
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80
    with pytest.raises(SystemExit):
        main(["stt", "--help"])  # its description has paragraphs and examples
    assert "\n\nThe choices come from a flow's speech menu" in capsys.readouterr().out


def test_lab_help_lists_the_lab_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["lab", "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    for command in ("up", "down", "status", "cli", "call", "load"):
        assert f"\n    {command} " in shown
    assert "\n  ivr lab up " in shown  # the description keeps its layout


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--config", "{missing}"],
        ["validate", "flows/main.yaml", "{missing}"],
        ["simulate", "{missing}"],
        ["simulate", "flows/main.yaml", "--input", "hangup", "--http-stub", "{missing}"],
        ["report", "--config", "{missing}"],
        ["prompts", "build", "--flows", "{missing}"],
        ["stt", "--choices", "yes,no", "{missing}"],
        ["graph", "{missing}"],
        ["test", "{missing}"],
        ["campaign", "start", "{missing}", "--flow", "main"],
        ["flows", "history", "main", "--config", "{missing}"],
        ["lab", "call", "100", "--wav", "{missing}"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_missing_file_is_named(
    args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    missing = str(tmp_path / "nowhere.yaml")
    assert main([a.replace("{missing}", missing) for a in args]) == 2
    assert capsys.readouterr().err == f"ivr: no such file: {missing}\n"


def test_a_file_gone_later_is_named_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(args: argparse.Namespace) -> int:
        raise FileNotFoundError(2, "No such file or directory", "/srv/ivr/prompts/beep.wav")

    monkeypatch.setattr("ivr.cli._schema", gone)
    assert main(["schema"]) == 2
    assert capsys.readouterr().err == "ivr: no such file: /srv/ivr/prompts/beep.wav\n"
