"""YAML flow file -> validated :class:`Flow`, with ``file:line:col: node 'id': message`` errors.

Loading runs in three passes and reports every problem it finds, not only the first:
schema (shape and types), node building (templates, conditions, patterns, hours), then the
graph checks in :mod:`ivr.flow.validate`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path as FsPath
from typing import Any, Literal, cast

from ivr.errors import (
    ExpressionError,
    ExpressionSyntaxError,
    FlowError,
    FlowErrors,
    HoursSpecError,
    IvrError,
    PatternError,
    PromptSpecError,
)
from ivr.flow import model as m
from ivr.flow.expr import compile_expression
from ivr.flow.hours import BusinessHours, parse_hours
from ivr.flow.prompts import parse_prompt
from ivr.flow.regex import FlowRegex, compile_flow_regex
from ivr.flow.schema import node_errors, top_level_errors
from ivr.flow.source import Path, Source, load_source
from ivr.flow.template import Placeholder, Template, parse_template

# What goes to Asterisk as a channel or caller id, checked whole (\A...\Z; `$` would also
# match before a trailing newline)
CHANNEL = re.compile(r"\A(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]+\Z")
DIAL_PATTERN = re.compile(
    r"\A(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]*\{number\}[A-Za-z0-9_.@:+-]*\Z"
)
CALLER_ID = re.compile(r"\A[0-9+]*\Z")
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


class _Builder:
    def __init__(self, src: Source, name: str) -> None:
        self.src = src
        self.data: dict[str, Any] = src.data
        self.name = name
        self.errors: list[FlowError] = []
        self.broken: set[str] = set()  # nodes that failed to build
        self.language = str(self.data.get("language", "en"))
        defaults = self.data.get("defaults") or {}
        self.defaults: dict[str, Any] = defaults if isinstance(defaults, dict) else {}

    def err(self, path: Path, message: str) -> None:
        self.errors.append(self.src.error(path, message))

    def at_offset(self, path: Path, offset: int, message: str) -> FlowError:
        """An error inside a one-line string value, pointing at the offending character."""
        line, col = self.src.where(path)
        text = self.src.line_text(line)
        quoted = 1 if text[col - 1 : col] in ("'", '"') else 0
        return FlowError(
            message, file=self.src.file, line=line, col=col + offset + quoted, node=str(path[1])
        )

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
            variables={k: _text(v) for k, v in (d.get("variables") or {}).items()},
            sensitive=sensitive,
            surveys=self.surveys(d.get("surveys") or {}),
            number_rules=self.number_rules(d.get("number_policy")),
        )

    def node(self, node_id: str, body: dict[str, Any]) -> m.FlowNode | None:
        base: Path = ("nodes", node_id)
        if node_id in m.RESERVED_TARGETS:
            self.err(base, f"'{node_id}' is a reserved word; give the node another id")
            return None
        kinds = [k for k in body if k in KINDS]
        if len(kinds) > 1 and "survey" in kinds:  # `survey: NAME` on a queue node
            kinds.remove("survey")
        if not kinds:
            unknown = [k for k in body if k not in COMMON_KEYS]
            what = f"unknown node kind '{unknown[0]}'" if unknown else "the node has no kind"
            where = (*base, unknown[0], "<key>") if unknown else base
            self.err(where, f"{what}; use one of: {', '.join(KINDS)}")
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
        except _Invalid:
            return None

    # --- helpers -------------------------------------------------------------------------

    def prompt(self, value: Any, path: Path) -> m.PromptSpec:
        try:
            return parse_prompt(value, self.language)
        except PromptSpecError as exc:
            self.err((*path, *exc.path), str(exc))
            raise _Invalid from None

    def template(self, value: Any, path: Path) -> Template:
        try:
            return parse_template(_text(value))
        except ExpressionError as exc:
            self.err(path, str(exc))
            raise _Invalid from None

    def pattern(self, value: str, path: Path) -> FlowRegex:
        """RE2, like matches(): the caller's digits meet it on the event loop, where a
        backtracking engine could stall every call on a pattern like ``(\\d+)+5``."""
        try:
            return compile_flow_regex(value)
        except PatternError as exc:
            self.err(path, f"bad pattern: {exc}")
            raise _Invalid from None

    def assign(self, mapping: dict[str, Any], path: Path) -> dict[str, Template]:
        return {k: self.template(v, (*path, k)) for k, v in mapping.items()}

    def retry(self, spec: dict[str, Any] | None, path: Path, fallback: str) -> m.Retry:
        merged = {**(self.defaults.get(fallback) or {}), **(spec or {})}
        prompt = self.prompt(merged["prompt"], (*path, "prompt")) if "prompt" in merged else None
        return m.Retry(prompt=prompt, **given(merged, max=int, then=str))

    def otherwise(self, spec: dict[str, Any], path: Path) -> str:
        if "otherwise" in spec:
            return str(spec["otherwise"])
        thens = [(spec.get(k) or {}).get("then") for k in ("no_input", "no_match")]
        if all(thens):
            return m.HANGUP  # never used: both failure paths have their own 'then'
        self.err(
            path,
            "say where to go after too many failed attempts: add 'otherwise: "
            "<node>' (or 'then' under both no_input and no_match)",
        )
        raise _Invalid

    def timeouts(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The node's timeouts, else the flow's ``defaults:``, else none (the model's)."""
        keys = ("timeout_s", "inter_digit_timeout_s")
        return given(
            {**{k: self.defaults[k] for k in keys if k in self.defaults}, **spec},
            timeout_s=float,
            inter_digit_timeout_s=float,
        )

    # --- node kinds ----------------------------------------------------------------------

    def _play(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.PlayNode:
        return m.PlayNode(
            id=nid,
            line=line,
            prompt=self.prompt(body[str(path[-1])], path),
            next=body["next"],
            **given(body, barge_in=bool, served=bool),
        )

    _say = _play

    def _menu(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.MenuNode:
        spec = body["menu"]
        options: dict[str, m.MenuOption] = {}
        for key, opt in spec["options"].items():
            if isinstance(opt, str):
                options[key] = m.MenuOption(key=key, target=opt)
            else:
                options[key] = m.MenuOption(
                    key=key,
                    target=opt["goto"],
                    words=tuple(opt.get("words", ())),
                    assign=self.assign(opt.get("set", {}), (*path, "options", key, "set")),
                )
        short = spec.get("short_prompt")
        return m.MenuNode(
            id=nid,
            line=line,
            prompt=self.prompt(spec["prompt"], (*path, "prompt")),
            short_prompt=self.prompt(short, (*path, "short_prompt")) if short else None,
            options=options,
            otherwise=self.otherwise(spec, path),
            no_input=self.retry(spec.get("no_input"), (*path, "no_input"), "no_input"),
            no_match=self.retry(spec.get("no_match"), (*path, "no_match"), "no_match"),
            **given(
                spec,
                inputs=("input", tuple),
                terminator=str,
                barge_in=bool,
                min_speech_ms=int,
                max_speech_s=float,
            ),
            **self.timeouts(spec),
        )

    def _collect(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.CollectNode:
        spec = body["collect"]
        digits = given(
            spec.get("digits", {}),
            min_digits=("min", int),
            max_digits=("max", int),
            terminator=("end", str),
        )
        lo = digits.get("min_digits", _default(m.CollectNode, "min_digits"))
        hi = digits.get("max_digits", _default(m.CollectNode, "max_digits"))
        if lo > hi:
            self.err((*path, "digits"), f"min {lo} is larger than max {hi}")
            raise _Invalid
        pattern = self.pattern(spec["pattern"], (*path, "pattern")) if "pattern" in spec else None
        confirm = spec.get("confirm")
        return m.CollectNode(
            id=nid,
            line=line,
            prompt=self.prompt(spec["prompt"], (*path, "prompt")),
            into=spec["into"],
            next=body["next"],
            otherwise=self.otherwise(spec, path),
            pattern=pattern,
            confirm=self.prompt(confirm, (*path, "confirm")) if confirm else None,
            no_input=self.retry(spec.get("no_input"), (*path, "no_input"), "no_input"),
            no_match=self.retry(spec.get("no_match"), (*path, "no_match"), "no_match"),
            **digits,
            **given(spec, sensitive=bool),
            **self.timeouts(spec),
        )

    def _set(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.SetNode:
        return m.SetNode(
            id=nid, line=line, assign=self.assign(body["set"], path), next=body["next"]
        )

    def _branch(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.BranchNode:
        if "else" not in body:
            self.err(path, "add 'else: <node>' for when no condition holds")
            raise _Invalid
        cases = []
        for i, case in enumerate(body["branch"]):
            try:
                cond = compile_expression(case["if"])
            except ExpressionSyntaxError as exc:
                self.errors.append(
                    self.at_offset(
                        (*path, i, "if"), exc.offset, f"condition {case['if']!r}: {exc.message}"
                    )
                )
                raise _Invalid from None
            except ExpressionError as exc:
                self.err((*path, i, "if"), f"condition {case['if']!r}: {exc}")
                raise _Invalid from None
            cases.append(m.BranchCase(condition=cond, target=case["goto"], source=case["if"]))
        return m.BranchNode(id=nid, line=line, cases=tuple(cases), otherwise=body["else"])

    def _goto(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.GotoNode:
        return m.GotoNode(id=nid, line=line, target=body["goto"])

    def _call(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.CallNode:
        return m.CallNode(id=nid, line=line, flow=body["call"], next=body["next"])

    def _hours(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.HoursNode:
        spec = body["hours"]
        tz = spec.get("timezone", self.data.get("timezone", "UTC"))
        try:
            hours = parse_hours(spec["open"], spec.get("holidays", []), tz)
        except HoursSpecError as exc:
            self.err((*path, *exc.path), str(exc))
            raise _Invalid from None
        return m.HoursNode(
            id=nid,
            line=line,
            hours=hours,
            when_open=spec["when_open"],
            when_closed=spec["when_closed"],
            when_holiday=spec.get("when_holiday", spec["when_closed"]),
        )

    def _http(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.HttpNode:
        spec = body["http"]
        method: Literal["GET", "POST"] = "GET" if "get" in spec else "POST"
        url = spec[method.lower()]
        if not url.startswith("/") or url.startswith("//"):
            self.err(
                (*path, method.lower()),
                "write a path like /accounts/{account}; the "
                "server's address comes from the configuration (http.base_url)",
            )
            raise _Invalid
        return m.HttpNode(
            id=nid,
            line=line,
            method=method,
            path=self.template(url, (*path, method.lower())),
            body=self.assign(spec.get("body", {}), (*path, "body")),
            **given(spec, save=dict, timeout_s=float),
            next=body["next"],
            on_error=spec["on_error"],
        )

    def _transfer(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.TransferNode:
        spec = body["transfer"]
        return m.TransferNode(
            id=nid,
            line=line,
            to=self.dial(spec["to"], (*path, "to"), CHANNEL),
            on_fail=spec["on_fail"],
            **given(spec, timeout_s=int),
        )

    def _hangup(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.HangupNode:
        spec = body["hangup"]
        return m.HangupNode(
            id=nid,
            line=line,
            **given(spec if isinstance(spec, dict) else {}, outcome=_hangup_outcome),
        )

    def _queue(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.QueueNode:
        spec = body["queue"]
        offer = spec.get("callback")
        callback = None
        if offer is not None:
            hours = self.calling_hours(offer, (*path, "callback"))
            callback = m.CallbackOffer(
                prompt=self.prompt(offer["prompt"], (*path, "callback", "prompt")),
                dial=self.dial(offer["dial"], (*path, "callback", "dial"), DIAL_PATTERN),
                hours=hours,
                **given(
                    offer,
                    over_s=float,
                    key=str,
                    then=str,
                    attempts=int,
                    retry_after_s=float,
                    max_concurrent=int,
                    refused=str,
                ),
            )
        survey = body.get("survey")
        if survey is not None and survey not in (self.data.get("surveys") or {}):
            self.err(("nodes", nid, "survey"), f"no survey named '{survey}' in 'surveys:'")
            raise _Invalid
        return m.QueueNode(
            id=nid,
            line=line,
            queue=spec["name"],
            when_unavailable=spec["when_unavailable"],
            when_timeout=spec["when_timeout"],
            **given(body, next=str),
            announce=self.prompt(spec["announce"], (*path, "announce"))
            if "announce" in spec
            else None,
            **given(spec, timeout_s=int, music=str, require_available=bool),
            callback=callback,
            survey=survey,
        )

    def _survey(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.SurveyNode:
        name = body["survey"]
        if name not in (self.data.get("surveys") or {}):
            self.err(path, f"no survey named '{name}' in 'surveys:'")
            raise _Invalid
        return m.SurveyNode(id=nid, line=line, survey=name, **given(body, next=str))

    def dial(self, value: str, path: Path, shape: re.Pattern[str]) -> str:
        """A dial string or caller id for AMI, whole: the schema's ``$`` (Python's) would let
        a trailing newline through, which would end the AMI action early."""
        if not shape.match(value):
            self.err(
                path,
                f"{value!r} is not a dial string this server sends; write one line "
                "like PJSIP/{number}@trunk (letters, digits and _ . @ : + - only)",
            )
            raise _Invalid
        return value

    def calling_hours(self, spec: dict[str, Any], path: Path) -> BusinessHours | None:
        """The optional ``hours:`` of an outbound section, in the flow's time zone."""
        if "hours" not in spec:
            return None
        try:
            return parse_hours(spec["hours"], [], self.data.get("timezone", "UTC"))
        except HoursSpecError as exc:
            self.err((*path, "hours", *exc.path), str(exc))
            raise _Invalid from None

    def number_rules(self, spec: dict[str, Any] | None) -> m.NumberRules | None:
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
        return m.NumberRules(
            allow_prefixes=tuple(spec.get("allow_prefixes", ())),
            deny_prefixes=tuple(spec.get("deny_prefixes", ())),
            min_digits=lo,
            max_digits=hi,
            per_caller_per_day=spec.get("per_caller_per_day"),
            per_number_per_day=spec.get("per_number_per_day"),
            edit=spec.get("edit"),
        )

    def surveys(self, section: dict[str, Any]) -> dict[str, m.SurveySpec]:
        out: dict[str, m.SurveySpec] = {}
        for name, spec in section.items():
            path: Path = ("surveys", name)
            questions = tuple(
                m.SurveyQuestion(
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
                continue
            if len(set(ids)) != len(ids):
                self.err((*path, "questions"), "two questions have the same id")
                continue
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
                except _Invalid:
                    continue
                outbound = m.OutboundSurvey(
                    dial=dial,
                    hours=hours,
                    **caller_id,
                    **given(
                        o, delay_s=float, attempts=int, retry_after_s=float, max_concurrent=int
                    ),
                )
            out[name] = m.SurveySpec(
                name=name,
                line=self.src.where(path)[0],
                questions=questions,
                satisfaction=satisfaction,
                intro=self.prompt(spec["intro"], (*path, "intro")) if "intro" in spec else None,
                thanks=self.prompt(spec["thanks"], (*path, "thanks")) if "thanks" in spec else None,
                **given(spec, inputs=("input", tuple), timeout_s=float, retries=int),
                outbound=outbound,
            )
        return out


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


def given(
    spec: Mapping[str, Any], **fields: Callable[[Any], Any] | tuple[str, Callable[[Any], Any]]
) -> dict[str, Any]:
    """Model fields for the keys the YAML gives, converted: ``field=conv`` reads the key of the
    same name, ``field=(key, conv)`` another key. Keys it does not give are left out, so the
    model's field defaults are the only defaults."""
    out: dict[str, Any] = {}
    for name, how in fields.items():
        key, conv = how if isinstance(how, tuple) else (name, how)
        if key in spec:
            out[name] = conv(spec[key])
    return out


def _default(cls: type[Any], name: str) -> Any:
    """A model field's default (the one place it is written)."""
    return cls.__dataclass_fields__[name].default


def _hangup_outcome(value: Any) -> m.HangupOutcome:
    return cast(m.HangupOutcome, value)


class _Invalid(IvrError):
    """A node could not be built; the reason is already in the error list."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
