"""Publish a flow's text again (a rollback) through the same safe reload as an edit.

:func:`republish` checks the text first with the checks a reload runs (the file's own, and
its sub-flow calls against the flows serving now) and refuses it, touching nothing, when it
would not load: a sub-flow it calls may be gone, a prompt file removed. Otherwise it writes
the text over the flow's file (a new file renamed into place, so the watcher never sees half
of it) and reloads, as an editor's save followed by ``POST /api/flows/reload`` would.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from ivr.errors import FlowError, FlowErrors
from ivr.flow.library import subflow_errors
from ivr.flow.loader import parse_flow
from ivr.flow.model import Flow
from ivr.flow.registry import FlowRegistry, ReloadResult

__all__ = ["flow_file", "republish"]


def flow_file(registry: FlowRegistry, name: str, stored: str = "") -> Path:
    """Where flow ``name`` is published: the file it serves from, else ``stored`` (where a
    version came from) when that is in the flows directory, else ``<flows_dir>/<name>.yaml``."""
    root = registry.flows_dir.resolve()
    serving = registry.get(name)
    for candidate in (serving.file if serving else "", stored):
        if candidate:
            path = Path(candidate).resolve()
            if path.is_relative_to(root) and path.stem == name:
                return path
    return root / f"{name}.yaml"


async def republish(
    registry: FlowRegistry, name: str, text: str, *, reason: str, by: str = "", stored: str = ""
) -> ReloadResult:
    """Publish ``text`` as flow ``name`` (see the module docstring); :class:`FlowErrors` when
    it would not load now, or did not (the reload's errors for its file)."""
    target = flow_file(registry, name, stored)
    flow, errors = await asyncio.to_thread(_check, registry, name, text, target)
    if flow is None or errors:
        raise FlowErrors(errors)
    await asyncio.to_thread(_write, target, text)
    result = await registry.reload(reason, by)
    serving = registry.get(name)
    if serving is None or serving.version != flow.version:  # changed again meanwhile
        mine = [e for e in result.errors if Path(e.file).resolve() == target]
        raise FlowErrors(mine or [FlowError(f"flow {name} did not load", file=str(target))])
    return result


def _check(
    registry: FlowRegistry, name: str, text: str, target: Path
) -> tuple[Flow | None, list[FlowError]]:
    try:
        flow = parse_flow(text, file=str(target), name=name, prompts_dir=registry.prompts_dir)
    except FlowErrors as exc:
        return None, exc.errors
    calls = subflow_errors({**registry.flows, name: flow})
    return flow, [e for e in calls if e.file == str(target)]


def _write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        if target.exists():
            os.chmod(temp, target.stat().st_mode & 0o777)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
