"""Read the project's Asterisk configuration (``asterisk-conf/*.conf``) the way Asterisk does.

Enough of the format for checks and probes: ``[name]``, templates ``[name](!)``, sections that
inherit ``[name](tpl1,tpl2)``, several sections with one name (pjsip.conf keeps an endpoint,
its aor and its auth under the same name), ``key = value`` and ``key => value``, ``;``
comments. ``#include`` lines are kept as options named ``#include``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_HEADER = re.compile(r"^\[([^\]]+)\]\s*(?:\(([^)]*)\))?\s*$")


@dataclass
class Section:
    name: str
    template: bool = False  # [name](!): not an object, only inherited from
    inherits: tuple[str, ...] = ()
    own: list[tuple[str, str]] = field(default_factory=list)  # in file order
    options: list[tuple[str, str]] = field(default_factory=list)  # inherited ones first

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of ``key`` (Asterisk: a later line wins), else ``default``."""
        values = self.all(key)
        return values[-1] if values else default

    def all(self, key: str) -> list[str]:
        return [value for k, value in self.options if k == key]

    @property
    def type(self) -> str | None:
        return self.get("type")


def _strip_comment(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def parse(text: str) -> list[Section]:
    """Every section of one file, in order, with templates resolved into ``options``."""
    sections: list[Section] = []
    current: Section | None = None
    for raw in text.splitlines():
        if raw.lstrip().startswith("#include"):
            if current is not None:
                current.own.append(("#include", raw.split(None, 1)[1].strip().strip('"')))
            continue
        line = _strip_comment(raw)
        if not line:
            continue
        if header := _HEADER.match(line):
            marks = [m.strip() for m in (header.group(2) or "").split(",") if m.strip()]
            current = Section(
                name=header.group(1).strip(),
                template="!" in marks,
                inherits=tuple(m for m in marks if m != "!"),
            )
            sections.append(current)
            continue
        key, sep, value = line.partition("=")
        if not sep or current is None:
            continue
        current.own.append((key.strip(), value.removeprefix(">").strip()))
    templates = {s.name: s for s in sections if s.template}

    def resolve(section: Section, seen: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = []
        for parent in section.inherits:
            if parent in seen or parent not in templates:
                raise ValueError(f"[{section.name}] inherits unknown template ({parent})")
            options += resolve(templates[parent], (*seen, parent))
        return options + section.own

    for section in sections:
        section.options = resolve(section)
    return sections


def load(path: Path) -> list[Section]:
    return parse(path.read_text())


def objects(sections: list[Section], type_: str) -> list[Section]:
    """The non-template sections of one ``type`` (pjsip.conf: endpoint, aor, auth, ...)."""
    return [s for s in sections if not s.template and s.type == type_]


def first(sections: list[Section], name: str) -> Section | None:
    """The first non-template section called ``name`` (e.g. ``general``)."""
    return next((s for s in sections if s.name == name and not s.template), None)


def endpoint_names(conf_dir: Path) -> list[str]:
    """Every PJSIP endpoint defined in ``conf_dir/pjsip.conf``."""
    return [s.name for s in objects(load(conf_dir / "pjsip.conf"), "endpoint")]
