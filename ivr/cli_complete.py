"""Shell completion of ``ivr`` (argcomplete): commands, options, and names read from the flows.

Turn it on once per shell: ``eval "$(register-python-argcomplete ivr)"``. The shell runs
``ivr`` with ``_ARGCOMPLETE`` set; :func:`autocomplete` then prints the completions and exits
before any command runs. Commands, options and choices come from the parser; what is cheap to
read (the file names in the flows directory, a flow file's node ids) is offered for the
arguments that name a flow or a node. Reading a name never fails a completion: a broken file
offers nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import argcomplete

from ivr.cli_conventions import commands
from ivr.config import load_settings
from ivr.flow.source import safe_load

Completer = Callable[..., Iterable[str]]


def flow_names(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The flows of the flows directory (``flows_dir`` of ``--config``, else ``flows``)."""
    return sorted(path.stem for path in _flow_files(parsed_args))


def speech_menus(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The ids of the menus with speech input in the flow file ``--flow`` (``ivr stt``)."""
    flow = getattr(parsed_args, "flow", None)
    nodes = _nodes(Path(flow)) if flow else {}
    return [n for n, body in nodes.items() if "speech" in _menu_inputs(body)]


def split_nodes(parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The ids of the split nodes of the flow named ``--flow`` (of every flow without it)."""
    name = getattr(parsed_args, "flow", None)
    files = [f for f in _flow_files(parsed_args) if name in (None, f.stem)]
    return sorted({n for f in files for n, body in _nodes(f).items() if "split" in body})


# (command words, argument) -> what completes it
COMPLETERS: dict[tuple[tuple[str, ...], str], Completer] = {
    (("report",), "flow"): flow_names,
    (("report",), "split"): split_nodes,
    (("campaign", "start"), "flow"): flow_names,
    (("stt",), "node"): speech_menus,
}
FLOW_NAME_COMMANDS = ("flows",)  # every `ivr flows ...` command's NAME is a flow name


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Attach the completers and answer the shell if it asked (exits then); without
    ``_ARGCOMPLETE`` in the environment, return at once."""
    for path, sub in commands(parser):
        for action in sub._actions:
            completer = COMPLETERS.get((path, action.dest))
            if completer is None and path[:1] == FLOW_NAME_COMMANDS and action.dest == "name":
                completer = flow_names
            if completer is not None:
                action.completer = completer  # type: ignore[attr-defined]
    argcomplete.autocomplete(parser)


def _flow_files(parsed_args: argparse.Namespace) -> list[Path]:
    try:
        flows = Path(load_settings(getattr(parsed_args, "config", None)).flows_dir)
        return sorted(flows.glob("*.yaml"))
    except Exception:  # a broken config offers nothing; completion must not fail
        return []


def _nodes(path: Path) -> dict[str, Any]:
    try:
        nodes = (safe_load(path.read_text(encoding="utf-8"), "flows") or {}).get("nodes")
    except Exception:  # a file that does not load offers nothing
        return {}
    if not isinstance(nodes, dict):
        return {}
    return {str(k): v for k, v in nodes.items() if isinstance(v, dict)}


def _menu_inputs(body: dict[str, Any]) -> list[str]:
    menu = body.get("menu")
    inputs = menu.get("input", []) if isinstance(menu, dict) else []
    return [inputs] if isinstance(inputs, str) else list(inputs)
