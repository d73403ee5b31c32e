"""One builder per node kind: a schema-valid YAML node -> its typed node (:mod:`ivr.flow.model`).

The loader (:mod:`ivr.flow.loader`) finds each node's kind and checks its shape against the
schema; :class:`NodeBuilder` then builds the node from its values (read by
:class:`~ivr.flow.value_reader.ValueReader`: templates, conditions, patterns, hours, dial
strings) and records every problem as a located ``file:line:col: node 'id': message`` error.
A node that cannot be built raises :class:`Invalid` once its reasons are recorded. The name of
a kind's builder is ``_`` and the kind (``_menu``, ``_queue``...): the loader calls it by name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, cast

from ivr.errors import ExpressionError, ExpressionSyntaxError, HoursSpecError
from ivr.flow import confirm_words
from ivr.flow import model as m
from ivr.flow.expr import compile_expression
from ivr.flow.hours import parse_hours
from ivr.flow.model_values import CallbackOffer, PromptSpec, RecordingConsent
from ivr.flow.queue_node import QueueNode
from ivr.flow.record_node import RecordNode
from ivr.flow.source import Path
from ivr.flow.split import SplitBranch
from ivr.flow.value_reader import (
    CHANNEL,
    DIAL_PATTERN,
    Invalid,
    ValueReader,
    field_default,
    given,
)

__all__ = ["NodeBuilder"]


class NodeBuilder(ValueReader):
    """Builds the nodes of one flow source, one method per kind."""

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
        prompt = self.prompt(spec["prompt"], (*path, "prompt"))
        if "speech" in spec.get("input", ()) and spec.get("confirm") != "never":
            options = self._confirm_prompts(spec, options, prompt, path)
        low, high = spec.get("min_confidence"), spec.get("accept_confidence")
        if low is not None and high is not None and low > high:
            self.err(
                (*path, "min_confidence"),
                f"min_confidence {low} is above accept_confidence {high}: below min_confidence a "
                "spoken choice is rejected, from accept_confidence on it is taken",
            )
            raise Invalid
        return m.MenuNode(
            id=nid,
            line=line,
            prompt=prompt,
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
                min_confidence=float,
                accept_confidence=float,
                confirm_mode=("confirm", str),
            ),
            **self.timeouts(spec),
        )

    def _confirm_prompts(
        self,
        spec: dict[str, Any],
        options: dict[str, m.MenuOption],
        prompt: PromptSpec,
        path: Path,
    ) -> dict[str, m.MenuOption]:
        """Each spoken option's "Did you say <its first word>?" question."""
        given_prompt = spec.get("confirm_prompt")
        question = given_prompt or confirm_words.default_prompt(
            set(prompt.parts_by_language), self.language
        )
        where = (*path, "confirm_prompt")
        return {
            key: replace(
                opt,
                confirm_prompt=self.prompt(
                    confirm_words.with_choice(question, opt.words[0]), where
                ),
            )
            if opt.words
            else opt
            for key, opt in options.items()
        }

    def _collect(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.CollectNode:
        spec = body["collect"]
        digits = given(
            spec.get("digits", {}),
            min_digits=("min", int),
            max_digits=("max", int),
            terminator=("end", str),
        )
        lo = digits.get("min_digits", field_default(m.CollectNode, "min_digits"))
        hi = digits.get("max_digits", field_default(m.CollectNode, "max_digits"))
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
            hours = parse_hours(
                spec["open"],
                spec.get("holidays", []),
                tz,
                calendar=spec.get("calendar"),
                workdays=spec.get("workdays"),
            )
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

    def _split(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.SplitNode:
        branches = tuple(
            SplitBranch(float(b["percent"]), b["goto"], str(b.get("label") or b["goto"]))
            for b in body["split"]
        )
        total = sum(b.percent for b in branches)
        if abs(total - 100) > 1e-9:
            shown = ", ".join(f"{b.percent:g}" for b in branches)
            self.err(
                path,
                f"the percentages ({shown}) add up to {total:g}, not 100; change them so "
                "that every caller has a branch, like [{percent: 10, goto: a}, "
                "{percent: 90, goto: b}]",
            )
            raise Invalid
        labels = [b.label for b in branches]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            self.err(
                path,
                f"two branches are both called {twice[0]!r}; give each a 'label' of its own "
                "(the call record and ivr report --split tell the branches apart by it)",
            )
            raise Invalid
        return m.SplitNode(id=nid, line=line, branches=branches)

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

    def _queue(self, nid: str, line: int, body: dict[str, Any], path: Path) -> QueueNode:
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
        record = spec.get("record")
        consent = None
        if record is not None:
            consent = RecordingConsent(
                consent=self.prompt(record["consent"], (*path, "record", "consent")),
                **given(record, refuse_key=str, wait_s=float),
            )
        survey = body.get("survey")
        if survey is not None and survey not in (self.data.get("surveys") or {}):
            self.err(("nodes", nid, "survey"), f"no survey named '{survey}' in 'surveys:'")
            raise Invalid
        return QueueNode(
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
            record=consent,
        )

    def _survey(self, nid: str, line: int, body: dict[str, Any], path: Path) -> m.SurveyNode:
        name = body["survey"]
        if name not in (self.data.get("surveys") or {}):
            self.err(path, f"no survey named '{name}' in 'surveys:'")
            raise Invalid
        return m.SurveyNode(id=nid, line=line, survey=name, **given(body, next=str, unanswered=str))

    def _record(self, nid: str, line: int, body: dict[str, Any], path: Path) -> RecordNode:
        spec = body["record"]
        confirm = spec.get("confirm")
        return RecordNode(
            id=nid,
            line=line,
            prompt=self.prompt(spec["prompt"], (*path, "prompt")),
            next=body["next"],
            on_empty=spec["on_empty"],
            confirm=self.prompt(confirm, (*path, "confirm")) if confirm else None,
            **given(
                spec,
                beep=bool,
                max_s=int,
                silence_s=int,
                end_key=str,
                min_s=float,
                max_tries=int,
            ),
        )


def _hangup_outcome(value: Any) -> m.HangupOutcome:
    return cast(m.HangupOutcome, value)
