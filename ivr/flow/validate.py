"""Graph checks on a built flow: dangling targets and unreachable nodes (in
:mod:`ivr.flow.targets`), loops that never wait for the caller, duplicate spoken words,
undefined variables, missing prompt files.

And warnings, which do not stop a flow from loading (``ivr validate`` prints them, exit 0):
:func:`flow_warnings`, for what only goes wrong with time, so they take the instant to judge at.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path as FsPath

from ivr.errors import FlowError
from ivr.flow import model as m
from ivr.flow.diagnostics import WARNING
from ivr.flow.model_values import BUILTIN_VARIABLES, Speech
from ivr.flow.source import Source
from ivr.flow.targets import edges, target_errors

SOUND_EXTENSIONS = (".wav", ".gsm", ".sln", ".sln16", ".ulaw", ".alaw", ".g722", ".WAV")
HOLIDAYS_AHEAD = timedelta(days=365)  # an explicit holiday list should reach this far


def check_flow(
    flow: m.Flow, src: Source, prompts_dir: str | FsPath | None, broken: set[str] | None = None
) -> list[FlowError]:
    """All graph-level problems of one flow; ``broken`` nodes exist but failed to build."""
    broken = broken or set()
    errors: list[FlowError] = []
    errors += target_errors(flow, src, broken)
    if not broken:  # what a broken node links to or sets is unknown
        errors += _busy_loops(flow, src)
        errors += _undefined_variables(flow, src)
    errors += _duplicate_words(flow, src)
    errors += _speech_menus(flow, src)
    if prompts_dir is not None:
        errors += _missing_files(flow, src, FsPath(prompts_dir))
    return errors


def _busy_loops(flow: m.Flow, src: Source) -> list[FlowError]:
    """Cycles made only of nodes that never wait for the caller would spin for ever."""
    graph = {
        nid: [t for t, _ in edges(n) if t in flow.nodes and not flow.nodes[t].waits]
        for nid, n in flow.nodes.items()
        if not n.waits
    }
    errors = []
    for component in _strongly_connected(graph):
        first = component[0]
        if len(component) > 1 or first in graph[first]:
            loop = " -> ".join([*component, first])
            errors.append(
                src.error(
                    ("nodes", first, "<key>"),
                    f"these nodes loop without ever "
                    f"waiting for the caller: {loop}; put a menu or collect in the loop",
                    node=first,
                )
            )
    return errors


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(comp[::-1])
    return out


def _duplicate_words(flow: m.Flow, src: Source) -> list[FlowError]:
    errors = []
    for node in flow.nodes.values():
        if not isinstance(node, m.MenuNode):
            continue
        owner: dict[str, str] = {}
        for key, opt in node.options.items():
            for word in opt.words:
                norm = " ".join(word.lower().split())
                if norm in owner and owner[norm] != key:
                    errors.append(
                        src.error(
                            ("nodes", node.id, "menu", "options", key, "words"),
                            f"the words '{word}' already choose option '{owner[norm]}'; "
                            "a word can lead to one option only",
                        )
                    )
                owner[norm] = key
    return errors


def _speech_menus(flow: m.Flow, src: Source) -> list[FlowError]:
    """Speech menus stream their prompts over AudioSocket: text or recordings only."""
    errors = []
    for node in flow.nodes.values():
        if not isinstance(node, m.MenuNode) or not node.speech:
            continue
        base = ("nodes", node.id, "menu")
        if not any(opt.words for opt in node.options.values()):
            errors.append(
                src.error(
                    (*base, "input"),
                    "a speech menu needs words on its options, "
                    'e.g. "1": {goto: balance, words: [balance]}',
                )
            )
        for prompt in node.prompts():
            for parts in prompt.parts_by_language.values():
                bad = [p for p in parts if not isinstance(p, Speech) or p.kind == "sound"]
                if bad:
                    errors.append(
                        src.error(
                            (*base, "prompt"),
                            "a speech menu streams its "
                            "prompts itself: use text or file prompts, not spoken values "
                            "({x:digits}) or stock sounds",
                        )
                    )
                    break
    return errors


def assigned_variables(flow: m.Flow) -> set[str]:
    """Variables a flow can set: declared ones, set/collect/http targets and option sets."""
    names = set(flow.variables) | BUILTIN_VARIABLES
    for node in flow.nodes.values():
        names.update(node.sets())
    return names


def _undefined_variables(flow: m.Flow, src: Source) -> list[FlowError]:
    known = assigned_variables(flow)
    errors = []
    for node in flow.nodes.values():
        kind = node.kind
        for name, where in node.reads():
            if name not in known:
                path = (
                    ("nodes", node.id, *where)
                    if where[0] in ("set", "branch", "http")
                    else ("nodes", node.id, kind, *where)
                )
                errors.append(
                    src.error(
                        path,
                        f"variable '{name}' is never set in this flow; "
                        "check the spelling, or declare it under 'variables:'",
                    )
                )
    return errors


def _missing_files(flow: m.Flow, src: Source, prompts_dir: FsPath) -> list[FlowError]:
    errors = []
    for node in flow.nodes.values():
        for prompt in node.prompts():
            for parts in prompt.parts_by_language.values():
                for part in parts:
                    if (
                        isinstance(part, Speech)
                        and part.kind == "file"
                        and not any(
                            (prompts_dir / f"{part.value}{ext}").is_file()
                            for ext in SOUND_EXTENSIONS
                        )
                    ):
                        errors.append(
                            src.error(
                                ("nodes", node.id),
                                f"prompt file '{part.value}' "
                                f"is not in {prompts_dir}/ (any of .wav, .gsm, .sln...)",
                            )
                        )
    return errors


def flow_warnings(flow: m.Flow, now: float) -> list[FlowError]:
    """Problems that do not stop the flow from loading, judged at ``now`` (Unix time): an
    ``hours`` node whose own holiday list has no date in the next 12 months (in the node's
    time zone) was written for a year that is over; its calendar, if any, is not judged."""
    warnings = []
    for node in flow.nodes.values():
        if not isinstance(node, m.HoursNode) or not node.hours.holidays:
            continue
        today = datetime.fromtimestamp(now, node.hours.zone).date()
        horizon = today + HOLIDAYS_AHEAD
        if any(h.last >= today and h.first <= horizon for h in node.hours.holidays):
            continue
        last = max(h.last for h in node.hours.holidays)
        warnings.append(
            FlowError(
                f"{WARNING}no holiday listed between {today} and {horizon} (the last one is "
                f"{last}); add next year's dates to 'holidays', or use 'calendar: <country>'",
                file=flow.file,
                line=node.line,
                col=1,
                node=node.id,
            )
        )
    return warnings
