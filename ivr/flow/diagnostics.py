"""What ``ivr validate`` found, written for a person, a program or a CI run.

Every problem is a :class:`Diagnostic`: file, line, column, node, severity (``error`` fails
the run, ``warning`` does not), the message and, when the message says how to fix it, the
fix (the message's part after its first "; "). :class:`ValidationReport` writes them in one
of :data:`FORMATS`:

* ``text``: ``file:line:col: node 'id': message`` lines on stderr (warnings say ``warning:``),
  then a summary line on stdout;
* ``json``: one JSON document on stdout, the counts and the list of diagnostics;
* ``github``: GitHub Actions workflow commands on stdout (``::error file=...,line=...,col=...::``
  and ``::warning ...``), which the run shows as annotations on the lines; then the summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from ivr.errors import FlowError

__all__ = ["FORMATS", "Diagnostic", "Severity", "ValidationReport"]

FORMATS = ("text", "json", "github")
WARNING = "warning: "  # starts the message of every warning (ivr.flow.validate's)

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem; ``line``/``column`` are 1-based, 0 when the problem has no place (an
    unreadable file)."""

    file: str
    line: int
    column: int
    node: str | None
    severity: Severity
    message: str
    fix: str | None = None

    @classmethod
    def of(cls, error: FlowError, severity: Severity) -> Diagnostic:
        """The diagnostic of a flow error or warning."""
        text = error.message.removeprefix(WARNING)
        problem, fix = split_fix(text)
        return cls(error.file, error.line, error.col, error.node, severity, problem, fix)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "line": self.line or None,
            "column": self.column or None,
            "node": self.node,
            "severity": self.severity,
            "message": self.message,
        }
        if self.fix:
            out["fix"] = self.fix
        return out

    def github(self) -> str:
        """The workflow command that annotates the line (``::error file=...::message``)."""
        where = [f"file={_property(self.file)}"]
        if self.line:
            where.append(f"line={self.line}")
        if self.column:
            where.append(f"col={self.column}")
        who = f"node '{self.node}': " if self.node else ""
        text = f"{who}{self.message}" + (f"; {self.fix}" if self.fix else "")
        return f"::{self.severity} {','.join(where)}::{_data(text)}"


def split_fix(message: str) -> tuple[str, str | None]:
    """``problem; fix`` -> (problem, fix): at the first "; " outside '...' quotes."""
    start = 0
    while (at := message.find("; ", start)) >= 0:
        if message.count("'", 0, at) % 2 == 0:
            return message[:at], message[at + 2 :]
        start = at + 2
    return message, None


@dataclass
class ValidationReport:
    """The outcome of validating ``paths``: how many flows loaded, their errors, warnings."""

    paths: list[str]
    flows: int
    errors: list[FlowError] = field(default_factory=list)
    warnings: list[FlowError] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No flow file was found at all (an error too: a wrong path must not pass CI)."""
        return not self.flows and not self.errors

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.empty

    def diagnostics(self) -> list[Diagnostic]:
        """Errors first (they fail the run), then warnings."""
        out = [Diagnostic.of(e, "error") for e in self.errors]
        out += [Diagnostic.of(w, "warning") for w in self.warnings]
        if self.empty:
            where = " ".join(self.paths)
            out.append(Diagnostic(where, 0, 0, None, "error", f"no flow files found in {where}"))
        return out

    def summary(self) -> str:
        bad = len({e.file for e in self.errors})
        return (
            f"{self.flows} flow(s) valid"
            + (f", {bad} with errors" if bad else "")
            + (f", {len(self.warnings)} warning(s)" if self.warnings else "")
        )

    def write(self, fmt: str, out: TextIO, err: TextIO) -> int:
        """Write the report in ``fmt`` (one of :data:`FORMATS`); the exit code: 1 on errors."""
        if fmt == "json":
            print(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), file=out)
        elif fmt == "github":
            for d in self.diagnostics():
                print(d.github(), file=out)
            print(self.summary(), file=out)
        else:
            for problem in [*self.errors, *self.warnings]:
                print(problem, file=err)
            if self.empty:
                print(f"no flow files found in {' '.join(self.paths)}", file=err)
            else:
                print(self.summary(), file=out)
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        diagnostics = self.diagnostics()
        return {
            "ok": not self.failed,
            "flows_valid": self.flows,
            "errors": sum(d.severity == "error" for d in diagnostics),
            "warnings": sum(d.severity == "warning" for d in diagnostics),
            "diagnostics": [d.to_dict() for d in diagnostics],
        }


def _data(text: str) -> str:
    """A workflow command's message, escaped as GitHub reads it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A workflow command's property value (file=...), escaped as GitHub reads it."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")
