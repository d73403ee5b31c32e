"""Reading a node's values: the base of :class:`ivr.flow.node_builders.NodeBuilder`.

:class:`ValueReader` turns the YAML values of one flow source into the model's values
(prompts, templates, patterns, retries, timeouts, dial strings, calling hours) and records
every problem as a located ``file:line:col: node 'id': message`` error; a value that cannot be
read raises :class:`Invalid` once its reason is recorded. :func:`given` passes on only the keys
the YAML gives, so the model's field defaults are the only defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ivr.errors import (
    ExpressionError,
    FlowError,
    HoursSpecError,
    IvrError,
    PatternError,
    PromptSpecError,
)
from ivr.flow import model as m
from ivr.flow.hours import BusinessHours, parse_hours
from ivr.flow.model_values import HANGUP, PromptSpec
from ivr.flow.prompts import parse_prompt
from ivr.flow.regex import FlowRegex, compile_flow_regex
from ivr.flow.source import Path, Source
from ivr.flow.template import Template, parse_template

__all__ = [
    "CALLER_ID",
    "CHANNEL",
    "DIAL_PATTERN",
    "Invalid",
    "ValueReader",
    "given",
    "yaml_text",
]

# What goes to Asterisk as a channel or caller id, checked whole (\A...\Z; `$` would also
# match before a trailing newline)
CHANNEL = re.compile(r"\A(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]+\Z")
DIAL_PATTERN = re.compile(
    r"\A(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]*\{number\}[A-Za-z0-9_.@:+-]*\Z"
)
CALLER_ID = re.compile(r"\A[0-9+]*\Z")


class ValueReader:
    """Reads the values of one flow source; ``errors`` collects what went wrong, located."""

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


def field_default(cls: type[Any], name: str) -> Any:
    """A model field's default (the one place it is written)."""
    return cls.__dataclass_fields__[name].default


class Invalid(IvrError):
    """A node could not be built; the reason is already in the error list."""


def yaml_text(value: Any) -> str:
    """A YAML scalar as flow text (booleans as ``true``/``false``, as YAML writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
