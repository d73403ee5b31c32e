"""One builder per node kind: a schema-valid YAML node -> its typed node (:mod:`ivr.flow.model`).

The loader (:mod:`ivr.flow.loader`) finds each node's kind and checks its shape against the
schema; :class:`NodeBuilder` then builds the node (templates, conditions, patterns, hours, dial
strings) and records every problem as a located ``file:line:col: node 'id': message`` error.
A node that cannot be built raises :class:`Invalid` once its reasons are recorded. The name of
a kind's builder is ``_`` and the kind (``_menu``, ``_queue``...): the loader calls it by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

from ivr.errors import (
    ExpressionError,
    ExpressionSyntaxError,
    FlowError,
    HoursSpecError,
    IvrError,
    PatternError,
    PromptSpecError,
)
from ivr.flow import model as m
from ivr.flow.expr import compile_expression
from ivr.flow.hours import BusinessHours, parse_hours
from ivr.flow.model_values import HANGUP, CallbackOffer, PromptSpec
from ivr.flow.prompts import parse_prompt
from ivr.flow.regex import FlowRegex, compile_flow_regex
from ivr.flow.source import Path, Source
from ivr.flow.template import Template, parse_template

__all__ = ["CALLER_ID", "CHANNEL", "DIAL_PATTERN", "Invalid", "NodeBuilder", "given", "yaml_text"]

# What goes to Asterisk as a channel or caller id, checked whole (\A...\Z; `$` would also
# match before a trailing newline)
CHANNEL = re.compile(r"\A(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]+\Z")
DIAL_PATTERN = re.compile(
    r"\A(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]*\{number\}[A-Za-z0-9_.@:+-]*\Z"
)
CALLER_ID = re.compile(r"\A[0-9+]*\Z")


class NodeBuilder:
    """Builds the nodes of one flow source; ``errors`` collects what went wrong, located."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.data: dict[str, Any] = src.data
        self.errors: list[FlowError] = []
        self.language = str(self.data.get("language", "en"))
        defaults = self.data.get("defaults") or {}
        self.defaults: dict[str, Any] = defaults if isinstance(defaults, dict) else {}

    def err(self, path: Path, message: str) -> None:
        """Record an error at ``path`` of the YAML."""
        self.errors.append(self.src.error(path, message))

    def at_offset(self, path: Path, offset: int, message: str) -> FlowError:
        """An error inside a one-line string value, pointing at the offending character."""
        line, col = self.src.where(path)
        text = self.src.line_text(line)
        quoted = 1 if text[col - 1 : col] in ("'", '"') else 0
        return FlowError(
            message, file=self.src.file, line=line, col=col + offset + quoted, node=str(path[1])
        )

    # --- helpers -------------------------------------------------------------------------

    def prompt(self, value: Any, path: Path) -> PromptSpec:
        """A YAML prompt value, its parts split (text, files, sounds, spoken values)."""
        try:
            return parse_prompt(value, self.language)
        except PromptSpecError as exc:
            self.err((*path, *exc.path), str(exc))
            raise Invalid from None

    def template(self, value: Any, path: Path) -> Template:
        """A text with ``{var}`` placeholders."""
        try:
            return parse_template(yaml_text(value))
        except ExpressionError as exc:
            self.err(path, str(exc))
            raise Invalid from None

    def pattern(self, value: str, path: Path) -> FlowRegex:
        """RE2, like matches(): the caller's digits meet it on the event loop, where a
        backtracking engine could stall every call on a pattern like ``(\\d+)+5``."""
        try:
            return compile_flow_regex(value)
        except PatternError as exc:
            self.err(path, f"bad pattern: {exc}")
            raise Invalid from None

    def assign(self, mapping: dict[str, Any], path: Path) -> dict[str, Template]:
        """A ``set:`` mapping: variable -> template."""
        return {k: self.template(v, (*path, k)) for k, v in mapping.items()}

    def retry(self, spec: dict[str, Any] | None, path: Path, fallback: str) -> m.Retry:
        """``no_input``/``no_match`` over the flow's ``defaults:`` of the same name."""
        merged = {**(self.defaults.get(fallback) or {}), **(spec or {})}
        prompt = self.prompt(merged["prompt"], (*path, "prompt")) if "prompt" in merged else None
        return m.Retry(prompt=prompt, **given(merged, max=int, then=str))

    def otherwise(self, spec: dict[str, Any], path: Path) -> str:
        """Where a menu or collect goes after too many failed attempts."""
        if "otherwise" in spec:
            return str(spec["otherwise"])
        thens = [(spec.get(k) or {}).get("then") for k in ("no_input", "no_match")]
        if all(thens):
            return HANGUP  # never used: both failure paths have their own 'then'
        self.err(
            path,
            "say where to go after too many failed attempts: add 'otherwise: "
            "<node>' (or 'then' under both no_input and no_match)",
        )
        raise Invalid

    def timeouts(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The node's timeouts, else the flow's ``defaults:``, else none (the model's)."""
        keys = ("timeout_s", "inter_digit_timeout_s")
        return given(
            {**{k: self.defaults[k] for k in keys if k in self.defaults}, **spec},
            timeout_s=float,
            inter_digit_timeout_s=float,
        )

    def dial(self, value: str, path: Path, shape: re.Pattern[str]) -> str:
        """A dial string or caller id for AMI, whole: the schema's ``$`` (Python's) would let
        a trailing newline through, which would end the AMI action early."""
        if not shape.match(value):
            self.err(
                path,
                f"{value!r} is not a dial string this server sends; write one line "
                "like PJSIP/{number}@trunk (letters, digits and _ . @ : + - only)",
            )
            raise Invalid
        return value

    def calling_hours(self, spec: dict[str, Any], path: Path) -> BusinessHours | None:
        """The optional ``hours:`` of an outbound section, in the flow's time zone."""
        if "hours" not in spec:
            return None
        try:
            return parse_hours(spec["hours"], [], self.data.get("timezone", "UTC"))
        except HoursSpecError as exc:
            self.err((*path, "hours", *exc.path), str(exc))
            raise Invalid from None

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
            raise Invalid
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
            raise Invalid
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
                raise Invalid from None
            except ExpressionError as exc:
                self.err((*path, i, "if"), f"condition {case['if']!r}: {exc}")
                raise Invalid from None
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
            raise Invalid from None
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
            raise Invalid
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
            callback = CallbackOffer(
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
            raise Invalid
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
            raise Invalid
        return m.SurveyNode(id=nid, line=line, survey=name, **given(body, next=str))


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


class Invalid(IvrError):
    """A node could not be built; the reason is already in the error list."""


def yaml_text(value: Any) -> str:
    """A YAML scalar as flow text (booleans as ``true``/``false``, as YAML writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
