"""Flow tests as ops write them: ``flows/tests/<flow>.yaml``, caller journeys and what must
come out of each (``ivr test``; the README's "Flow tests" has the format).

::

    flow: main                        # optional: the file's name
    defaults: {caller: "5550100"}     # optional: keys every case starts from
    cases:
      - name: sales
        input: "1"                    # as ivr simulate --input: "1, wait, say:sales, hangup"
        expect:
          path: [welcome, menu, sales, goodbye]
          outcome: self_service

This module only reads the file (the YAML 1.2 reader of flows, so ``0123`` stays text and
every case knows its line) into :class:`CaseFile`; the caller tokens are checked and the cases
run on the simulator by :mod:`ivr.runtime.flow_tests`, ``at:`` is read by
:mod:`ivr.flow.call_time`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.errors import FlowError, FlowErrors
from ivr.flow.source import Path as YamlPath
from ivr.flow.source import Source, load_source
from ivr.flow.suggest import Suggester, did_you_mean

__all__ = ["TESTS_DIR", "CaseFile", "Expect", "FlowCase", "load_cases", "test_files"]

TESTS_DIR = "tests"  # flows/tests/<flow>.yaml: next to the flows, never loaded as one
FILE_KEYS = ("flow", "defaults", "cases")
JOURNEY_KEYS = ("input", "at", "caller", "dnis", "params", "http", "queue")
# queue: what AMI would say about every agent queue (ivr.call.queue.QueueState's fields)
QUEUE_KEYS = ("logged_in", "available", "callers", "holdtime_s", "talktime_s")
CASE_KEYS = ("name", *JOURNEY_KEYS, "expect")
EXPECT_KEYS = (
    "path",
    "path_contains",
    "outcome",
    "end_node",
    "variables",
    "heard",
    "not_heard",
    "inputs",
)


@dataclass(frozen=True)
class Expect:
    """What must come out of a case; ``None``/empty: not checked."""

    path: tuple[str, ...] | None = None  # exactly the nodes walked
    path_contains: tuple[str, ...] = ()  # these nodes, in this order, among others
    outcome: str | None = None
    end_node: str | None = None
    variables: dict[str, str] = field(default_factory=dict)  # a subset of the final ones
    heard: tuple[str, ...] = ()  # pieces of what the caller heard, in this order
    not_heard: tuple[str, ...] = ()
    inputs: tuple[dict[str, str], ...] = ()  # {node, kind, value}: in order, among others


@dataclass(frozen=True)
class FlowCase:
    """One caller journey: what the caller does, when and from where, what lookups answer."""

    name: str
    file: str
    line: int
    input: tuple[str, ...] = ()  # caller tokens, checked when the case runs
    at: str | None = None  # ISO time or a relative form (ivr.flow.call_time)
    caller: str = "5550100"
    dnis: str = ""
    params: dict[str, str] = field(default_factory=dict)  # call variables (campaign columns)
    http: dict[str, object] = field(default_factory=dict)  # "GET /path": reply
    queue: dict[str, float] | None = None  # the agent queues' state; None: not checked
    expect: Expect = Expect()


@dataclass(frozen=True)
class CaseFile:
    """A test file: the flow it tests and its cases."""

    file: str
    flow: str
    cases: tuple[FlowCase, ...]


def test_files(flows_dir: str | Path) -> list[Path]:
    """The test files of a flows directory (``<dir>/tests/*.yaml``), sorted."""
    tests = Path(flows_dir) / TESTS_DIR
    if not tests.is_dir():
        return []
    return sorted(f for f in tests.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())


def load_cases(file: str | Path) -> CaseFile:
    """Read a test file; :class:`FlowErrors` (``file:line:col: message``) for every mistake."""
    name = str(file)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowErrors([FlowError(f"cannot read the test file: {exc}", file=name)]) from None
    try:
        src = load_source(text, name)
    except FlowError as exc:
        raise FlowErrors([exc]) from None
    reader = _Reader(src)
    cases = reader.file(Path(file).stem)
    if reader.errors:
        raise FlowErrors(reader.errors)
    return cases


class _Reader:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.errors: list[FlowError] = []

    def err(self, path: YamlPath, message: str) -> None:
        line, col = self.src.where(path)
        self.errors.append(FlowError(message, file=self.src.file, line=line, col=col))

    def keys(self, data: Mapping[str, Any], allowed: tuple[str, ...], path: YamlPath) -> None:
        names = Suggester(allowed)
        for key in data:
            if key not in allowed:
                hint = did_you_mean(names.close(key))
                known = f"known: {', '.join(allowed)}"
                self.err((*path, key, "<key>"), f"unknown key '{key}'; {hint or known}")

    def mapping(self, value: object, path: YamlPath, what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"{what} must be a mapping")
            return {}
        return value

    def file(self, stem: str) -> CaseFile:
        data = self.src.data
        if not isinstance(data, dict):
            self.err((), "a test file is a mapping with 'cases:' (a list of caller journeys)")
            return CaseFile(self.src.file, stem, ())
        self.keys(data, FILE_KEYS, ())
        flow = self.text(data.get("flow", stem), ("flow",), "flow")
        defaults = self.mapping(data.get("defaults"), ("defaults",), "defaults")
        self.keys(defaults, JOURNEY_KEYS, ("defaults",))
        items = data.get("cases")
        if not isinstance(items, list) or not items:
            self.err(("cases",), "'cases:' must be a list of caller journeys (at least one)")
            return CaseFile(self.src.file, flow, ())
        cases = [self.case(item, ("cases", i), defaults) for i, item in enumerate(items)]
        seen: dict[str, int] = {}
        for i, case in enumerate(cases):
            if case.name in seen:
                self.err(
                    ("cases", i, "name"),
                    f"a case named '{case.name}' is already on line {seen[case.name]}",
                )
            seen.setdefault(case.name, case.line)
        return CaseFile(self.src.file, flow, tuple(cases))

    def case(self, item: object, path: YamlPath, defaults: dict[str, Any]) -> FlowCase:
        line = self.src.where(path)[0]
        body = self.mapping(item, path, "a case")
        self.keys(body, CASE_KEYS, path)
        data = {**defaults, **body}
        where = {k: (*path, k) if k in body else ("defaults", k) for k in data}
        name = self.text(body.get("name", f"case on line {line}"), (*path, "name"), "name")
        http = self.mapping(data.get("http"), where.get("http", path), "http")
        return FlowCase(
            name=name,
            file=self.src.file,
            line=line,
            input=self.tokens(data.get("input"), where.get("input", path)),
            at=self.text(data["at"], where["at"], "at") if data.get("at") is not None else None,
            caller=self.text(data.get("caller", "5550100"), where.get("caller", path), "caller"),
            dnis=self.text(data.get("dnis", ""), where.get("dnis", path), "dnis"),
            params=self.texts(data.get("params"), where.get("params", path), "params"),
            http={str(k): v for k, v in http.items()},
            queue=self.queue(data["queue"], where["queue"]) if "queue" in data else None,
            expect=self.expect(body.get("expect"), (*path, "expect")),
        )

    def expect(self, value: object, path: YamlPath) -> Expect:
        data = self.mapping(value, path, "expect")
        if not data:
            self.err(path, "a case needs 'expect:' (path, outcome, variables, heard...)")
        self.keys(data, EXPECT_KEYS, path)
        inputs = data.get("inputs") or []
        if not isinstance(inputs, list):
            self.err((*path, "inputs"), "inputs must be a list like [{node: menu, kind: dtmf}]")
            inputs = []
        return Expect(
            path=self.names(data["path"], (*path, "path")) if "path" in data else None,
            path_contains=self.names(data.get("path_contains"), (*path, "path_contains")),
            outcome=self.text(data["outcome"], (*path, "outcome"), "outcome")
            if "outcome" in data
            else None,
            end_node=self.text(data["end_node"], (*path, "end_node"), "end_node")
            if "end_node" in data
            else None,
            variables=self.texts(data.get("variables"), (*path, "variables"), "variables"),
            heard=self.names(data.get("heard"), (*path, "heard")),
            not_heard=self.names(data.get("not_heard"), (*path, "not_heard")),
            inputs=tuple(
                self.texts(item, (*path, "inputs", i), "an expected input")
                for i, item in enumerate(inputs)
            ),
        )

    def queue(self, value: object, path: YamlPath) -> dict[str, float]:
        data = self.mapping(value, path, "queue")
        self.keys(data, QUEUE_KEYS, path)
        out: dict[str, float] = {}
        for key, number in data.items():
            if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
                self.err((*path, key), f"queue {key} must be a number, 0 or more")
            elif key in QUEUE_KEYS:
                out[key] = float(number)
        return out

    def text(self, value: object, path: YamlPath, what: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.err(path, f"{what} must be text")
            return ""
        return str(value)

    def texts(self, value: object, path: YamlPath, what: str) -> dict[str, str]:
        data = self.mapping(value, path, what)
        return {str(k): self.text(v, (*path, k), f"{what} '{k}'") for k, v in data.items()}

    def names(self, value: object, path: YamlPath) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            value = [value]
        return tuple(self.text(v, (*path, i), "each item") for i, v in enumerate(value))

    def tokens(self, value: object, path: YamlPath) -> tuple[str, ...]:
        """``"1, wait, say:sales"`` or a list of the same tokens (a number is its digits)."""
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return tuple(t.strip() for t in self.names(value, path) if t.strip())
