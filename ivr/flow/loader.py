"""YAML flow file -> validated :class:`Flow`, with ``file:line:col: node 'id': message`` errors.

Loading runs in three passes and reports every problem it finds, not only the first:
schema (shape and types), node building (templates, conditions, patterns, hours; each kind's
builder is in :mod:`ivr.flow.node_builders`, its values read by :mod:`ivr.flow.value_reader`),
then the graph checks in :mod:`ivr.flow.validate`.
This module reads the document: its top level, each node's kind, surveys and number policy.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path as FsPath
from typing import Any

from ivr.errors import FlowError, FlowErrors
from ivr.flow import model as m
from ivr.flow.model_values import (
    RESERVED_TARGETS,
    NumberRules,
    OutboundSurvey,
    SurveyQuestion,
    SurveySpec,
)
from ivr.flow.node_builders import NodeBuilder
from ivr.flow.schema import node_errors, top_level_errors
from ivr.flow.source import Path, Source, load_source
from ivr.flow.suggest import did_you_mean, suggest
from ivr.flow.template import Placeholder
from ivr.flow.value_reader import CALLER_ID, DIAL_PATTERN, Invalid, given, yaml_text

PREFIX = re.compile(r"\A\+?[0-9]*\Z")

KINDS = m.KINDS  # from the model: a node kind's YAML key(s) live on its class
COMMON_KEYS = frozenset({"next", "served", "description", "else", "barge_in", "survey"})


def load_flow(path: str | FsPath, prompts_dir: str | FsPath | None = None) -> m.Flow:
    """Read, parse and validate one flow file. Raises :class:`FlowErrors`."""
    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowErrors([FlowError(f"cannot read the file: {exc}", file=str(p))]) from None
    return parse_flow(text, file=str(p), name=p.stem, prompts_dir=prompts_dir)


def parse_flow(
    text: str, *, file: str, name: str, prompts_dir: str | FsPath | None = None
) -> m.Flow:
    """Parse and validate flow text. Raises :class:`FlowErrors` listing every problem."""
    from ivr.flow.validate import check_flow

    try:
        src = load_source(text, file)
    except FlowError as exc:
        raise FlowErrors([exc]) from None
    if not isinstance(src.data, dict):
        raise FlowErrors([src.error((), "a flow file is a mapping with 'start' and 'nodes'")])
    builder = _Builder(src, name)
    flow = builder.build()
    errors = builder.errors
    if flow is not None:  # graph checks still run when some nodes are broken
        errors += check_flow(flow, src, prompts_dir, broken=builder.broken)
    if errors or flow is None:
        raise FlowErrors(sorted(errors, key=lambda e: (e.line, e.col)))
    return flow


class _Builder(NodeBuilder):
    """The whole flow: top-level checks, each node's kind and shape (then its kind's builder),
    surveys, number policy and the sensitive variables."""

    def __init__(self, src: Source, name: str) -> None:
        super().__init__(src)
        self.name = name
        self.broken: set[str] = set()  # nodes that failed to build

    def build(self) -> m.Flow | None:
        for path, msg in top_level_errors(self.data):
            self.err(path, msg)
        if self.errors:
            return None
        d = self.data
        if "flow" in d and d["flow"] != self.name:
            self.err(
                ("flow",),
                f"flow name '{d['flow']}' differs from the file name "
                f"'{self.name}'; rename one so they match",
            )
        nodes: dict[str, m.FlowNode] = {}
        for node_id, body in d["nodes"].items():
            node = self.node(node_id, body)
            if node is not None:
                nodes[node_id] = node
            else:
                self.broken.add(node_id)
        digest = hashlib.sha256(self.src.text.encode()).hexdigest()[:12]
        label = d.get("version")
        declared = {n.into for n in nodes.values() if isinstance(n, m.CollectNode) and n.sensitive}
        sensitive = tainted(nodes, declared | set(d.get("sensitive") or ()))
        return m.Flow(
            name=self.name,
            version=f"{label}+{digest}" if label is not None else digest,
            file=self.src.file,
            start=d["start"],
            nodes=nodes,
            language=self.language,
            languages=tuple(d.get("languages") or [self.language]),
            timezone=str(d.get("timezone", "UTC")),
            variables={k: yaml_text(v) for k, v in (d.get("variables") or {}).items()},
            sensitive=sensitive,
            surveys=self.surveys(d.get("surveys") or {}),
            number_rules=self.number_rules(d.get("number_policy")),
        )

    def node(self, node_id: str, body: dict[str, Any]) -> m.FlowNode | None:
        base: Path = ("nodes", node_id)
        if node_id in RESERVED_TARGETS:
            self.err(base, f"'{node_id}' is a reserved word; give the node another id")
            return None
        kinds = [k for k in body if k in KINDS]
        if len(kinds) > 1 and "survey" in kinds:  # `survey: NAME` on a queue node
            kinds.remove("survey")
        if not kinds:
            unknown = [k for k in body if k not in COMMON_KEYS]
            what = f"unknown node kind '{unknown[0]}'" if unknown else "the node has no kind"
            where = (*base, unknown[0], "<key>") if unknown else base
            hint = did_you_mean(suggest(unknown[0], KINDS, 1)) if unknown else ""
            use = f"{hint} Use one of" if hint else "use one of"
            self.err(where, f"{what}; {use}: {', '.join(KINDS)}")
            return None
        if len(kinds) > 1:
            self.err(
                base,
                f"a node has exactly one kind, this one has {', '.join(kinds)}; "
                "split it into several nodes",
            )
            return None
        kind = kinds[0]
        schema_errors = node_errors(kind, body)
        for path, msg in schema_errors:
            self.err((*base, *path), msg)
        if schema_errors:
            return None
        line = self.src.where(base)[0]
        try:
            node: m.FlowNode = getattr(self, f"_{kind}")(node_id, line, body, (*base, kind))
            return node
        except Invalid:
            return None

    def number_rules(self, spec: dict[str, Any] | None) -> NumberRules | None:
        """``number_policy:`` (its shape is checked by the schema)."""
        if spec is None:
            return None
        lo, hi = spec.get("min_digits"), spec.get("max_digits")
        if lo is not None and hi is not None and lo > hi:
            self.err(
                ("number_policy", "min_digits"), f"min_digits {lo} is larger than max_digits {hi}"
            )
        for key in ("allow_prefixes", "deny_prefixes"):
            for i, prefix in enumerate(spec.get(key, ())):
                if not PREFIX.match(prefix):
                    self.err(
                        ("number_policy", key, i),
                        f"{key}: {prefix!r} is not a prefix; "
                        "write digits with an optional leading +, like '0900' or '+'",
                    )
        return NumberRules(
            allow_prefixes=tuple(spec.get("allow_prefixes", ())),
            deny_prefixes=tuple(spec.get("deny_prefixes", ())),
            min_digits=lo,
            max_digits=hi,
            per_caller_per_day=spec.get("per_caller_per_day"),
            per_number_per_day=spec.get("per_number_per_day"),
            edit=spec.get("edit"),
        )

    def surveys(self, section: dict[str, Any]) -> dict[str, SurveySpec]:
        out: dict[str, SurveySpec] = {}
        for name, spec in section.items():
            try:
                survey = self.survey(name, spec)
            except Invalid:  # a prompt it uses is broken: already reported
                continue
            if survey is not None:
                out[name] = survey
        return out

    def survey(self, name: str, spec: dict[str, Any]) -> SurveySpec | None:
        """One survey of ``surveys:``; None (reported) when it is not usable."""
        path: Path = ("surveys", name)
        questions = tuple(
            SurveyQuestion(
                q["id"],
                self.prompt(q["prompt"], (*path, "questions", i, "prompt")),
                **given(q, scale=str),
            )
            for i, q in enumerate(spec["questions"])
        )
        ids = [q.id for q in questions]
        rated = [q.id for q in questions if q.scale == "1-5"]
        satisfaction = spec.get("satisfaction") or (rated[0] if rated else ids[0])
        if satisfaction not in ids:
            self.err(
                (*path, "satisfaction"),
                f"'{satisfaction}' is not one of the questions ({', '.join(ids)})",
            )
            return None
        if len(set(ids)) != len(ids):
            self.err((*path, "questions"), "two questions have the same id")
            return None
        outbound = None
        if "outbound" in spec:
            o = spec["outbound"]
            try:
                hours = self.calling_hours(o, (*path, "outbound"))
                dial = self.dial(o["dial"], (*path, "outbound", "dial"), DIAL_PATTERN)
                caller_id: dict[str, Any] = (
                    {
                        "caller_id": self.dial(
                            str(o["caller_id"]), (*path, "outbound", "caller_id"), CALLER_ID
                        )
                    }
                    if "caller_id" in o
                    else {}
                )
            except Invalid:  # already reported
                return None
            outbound = OutboundSurvey(
                dial=dial,
                hours=hours,
                **caller_id,
                **given(o, delay_s=float, attempts=int, retry_after_s=float, max_concurrent=int),
            )
        return SurveySpec(
            name=name,
            line=self.src.where(path)[0],
            questions=questions,
            satisfaction=satisfaction,
            intro=self.prompt(spec["intro"], (*path, "intro")) if "intro" in spec else None,
            thanks=self.prompt(spec["thanks"], (*path, "thanks")) if "thanks" in spec else None,
            **given(spec, inputs=("input", tuple), timeout_s=float, retries=int),
            outbound=outbound,
        )


def tainted(nodes: dict[str, m.FlowNode], sensitive: set[str]) -> frozenset[str]:
    """``sensitive`` plus every variable set from one of them (``set: {copy: "{account}"}``),
    transitively: a copy of an account number is as secret as the number. A ``:masked``
    placeholder shows only the last four characters, so it does not pass the secret on."""
    assigns = [a for n in nodes.values() for a in n.assignments()]
    out = set(sensitive)
    while True:
        more = {
            name
            for name, tpl in assigns
            if name not in out
            and any(
                p.name in out
                for p in tpl.parts
                if isinstance(p, Placeholder) and p.format != "masked"
            )
        }
        if not more:
            return frozenset(out)
        out |= more
