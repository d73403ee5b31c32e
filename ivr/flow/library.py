"""All flows of a directory, loaded and cross-checked (sub-flow calls must name a loaded flow)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.errors import FlowError, FlowErrors
from ivr.flow.loader import load_flow
from ivr.flow.model import CallNode, Flow

FLOW_SUFFIXES = (".yaml", ".yml")


@dataclass
class FlowLibrary:
    """Flows by name (file stem), plus the errors of files that failed to load."""

    flows: dict[str, Flow] = field(default_factory=dict)
    errors: list[FlowError] = field(default_factory=list)

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)


def flow_files(paths: list[str | Path]) -> list[Path]:
    """Expand directories into their flow files, sorted; keep files as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix in FLOW_SUFFIXES and f.is_file())
        else:
            out.append(p)
    return out


def load_library(paths: list[str | Path], prompts_dir: str | Path | None = None) -> FlowLibrary:
    """Load every flow; a broken file is reported and left out, the others still load."""
    lib = FlowLibrary()
    for file in flow_files(paths):
        try:
            flow = load_flow(file, prompts_dir)
        except FlowErrors as exc:
            lib.errors += exc.errors
            continue
        if flow.name in lib.flows:
            lib.errors.append(
                FlowError(
                    f"a flow named '{flow.name}' is already loaded from "
                    f"{lib.flows[flow.name].file}",
                    file=str(file),
                    line=1,
                )
            )
            continue
        lib.flows[flow.name] = flow
    lib.errors += subflow_errors(lib.flows)
    return lib


def subflow_errors(flows: Mapping[str, Flow]) -> list[FlowError]:
    """Sub-flow calls (``call:``) naming a flow that is not among ``flows``."""
    return [
        FlowError(
            f"calls flow '{node.flow}', which is not loaded (no {node.flow}.yaml "
            "next to this file, or it has errors)",
            file=flow.file,
            line=node.line,
            col=1,
            node=node.id,
        )
        for flow in flows.values()
        for node in flow.nodes.values()
        if isinstance(node, CallNode) and node.flow not in flows
    ]
