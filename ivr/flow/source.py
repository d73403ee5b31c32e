"""YAML source with positions: flows are read into plain data plus a map of where each value is.

The resolver follows YAML 1.2's core schema, not PyYAML's 1.1 default: ops write ``yes``, ``no``,
``on``, ``08:00`` and ``2027-01-01`` and mean strings, not booleans, sexagesimal integers or dates.
Mapping keys are always the raw text that was written (``1:`` is the key ``"1"``). Duplicate
keys are an error instead of a silent override (two options on the same digit).

Anchors and aliases are refused as the parser meets them, before anything is composed: a few
hundred bytes of nested aliases expand to hundreds of millions of values ("billion laughs").
Nesting deeper than :data:`MAX_DEPTH` is refused too (the composer recurses once per level).
The configuration and ``--http-stub`` files get the same refusals through :func:`safe_load`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ivr.errors import FlowError, YamlRefused
from ivr.flow.yaml_errors import explain

Path = tuple[str | int, ...]

MAX_DEPTH = 64  # mappings and lists inside each other; a real flow needs fewer than ten
ALIASES_REFUSED = "anchors and aliases are not allowed in flows; write the value out"
TOO_DEEP = f"values nested too deeply (more than {MAX_DEPTH} levels); a flow needs a few"


class _Guard(yaml.composer.Composer):
    """The composer of every YAML loader here: refuses anchors, aliases and nesting deeper than
    :data:`MAX_DEPTH` as the parser meets them, before anything is composed."""

    aliases_refused = ALIASES_REFUSED
    too_deep = TOO_DEEP

    def __init__(self) -> None:
        yaml.composer.Composer.__init__(self)
        self._keys: list[str | None] = []  # mapping keys from the root to the node composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Refuse an anchor, an alias or one level too many before composing anything."""
        event: yaml.Event = self.peek_event()  # type: ignore[attr-defined]  # Parser's
        key = index.value if isinstance(index, yaml.ScalarNode) else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlRefused(self.aliases_refused, event, self._flow_node(key))
        if len(self._keys) > MAX_DEPTH:
            raise YamlRefused(self.too_deep, event, self._flow_node(key))
        self._keys.append(key)
        try:
            return yaml.composer.Composer.compose_node(self, parent, index)
        finally:
            self._keys.pop()

    def _flow_node(self, key: str | None) -> str | None:
        """The flow node being composed, for the error; only flows have nodes."""
        return None


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema: null, true/false, decimal int, float; everything else a string."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _Guard,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _Guard.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)

    def _flow_node(self, key: str | None) -> str | None:
        """The id of the flow node being composed (``nodes: {<id>: ...}``), if any."""
        path = [*self._keys[1:], key]  # the first entry is the document itself
        return str(path[1]) if len(path) >= 2 and path[0] == "nodes" and path[1] else None


class _SafeLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _Guard,
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """``yaml.SafeLoader`` (YAML 1.1, what these files were always read with) behind the guard."""

    def __init__(self, stream: str, what: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _Guard.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.aliases_refused = f"anchors and aliases are not allowed in {what}; write the value out"
        self.too_deep = f"values nested too deeply (more than {MAX_DEPTH} levels)"


def safe_load(text: str, what: str) -> Any:
    """``yaml.safe_load`` for the other YAML files (configuration, HTTP stubs), refusing
    anchors, aliases and deep nesting as flows do: :class:`YamlRefused` (a ``yaml.YAMLError``;
    ``exc.at(file)`` reads ``file:line:col: ... not allowed in <what> ...``)."""
    loader = _SafeLoader(text, what)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


@dataclass
class Source:
    """Plain data read from one YAML file, with the 1-based line/column of every value."""

    file: str
    data: Any
    text: str = ""
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    _lines: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    def where(self, path: Path) -> tuple[int, int]:
        """Position of ``path``, or of its nearest ancestor that has one."""
        for n in range(len(path), -1, -1):
            mark = self.marks.get(tuple(path[:n]))
            if mark:
                return mark
        return (1, 1)

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, "" past the end (split once: errors ask line by line)."""
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines[line - 1] if 0 < line <= len(self._lines) else ""

    def error(self, path: Path, message: str, node: str | None = None) -> FlowError:
        line, col = self.where(path)
        if node is None and len(path) >= 2 and path[0] == "nodes":
            node = str(path[1])
        return FlowError(message, file=self.file, line=line, col=col, node=node)


def load_source(text: str, file: str) -> Source:
    """Parse YAML text; syntax errors (in ops words, at the mistake: :mod:`ivr.flow.yaml_errors`),
    duplicate keys, anchors, aliases and too deep nesting raise :class:`FlowError`."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except YamlRefused as exc:
        raise FlowError(exc.message, file=file, line=exc.line, col=exc.col, node=exc.node) from None
    except yaml.YAMLError as exc:
        why = explain(exc, text)
        raise FlowError(why.message, file=file, line=why.line, col=why.col) from None
    finally:
        loader.dispose()
    src = Source(file=file, data=None, text=text)
    if root is not None:
        src.data = _convert(loader, root, (), src)
    return src


def _convert(loader: _Loader, node: yaml.Node, path: Path, src: Source) -> Any:
    src.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                raise FlowError(
                    "mapping keys must be plain text",
                    file=src.file,
                    line=line,
                    col=key_node.start_mark.column + 1,
                )
            key = str(key_node.value)
            if key in out:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                first = src.marks.get((*path, key), (0, 0))[0]
                raise FlowError(
                    f"duplicate key '{key}' (first defined on line {first}); remove one of them",
                    file=src.file,
                    line=line,
                    col=col,
                )
            src.marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(loader, value_node, (*path, key), src)
            # The key's own position is more useful than the value's for "unknown key" errors,
            # and the value's position for bad values: keep the value's under the key path.
            src.marks[(*path, key)] = (
                value_node.start_mark.line + 1,
                value_node.start_mark.column + 1,
            )
            src.marks[(*path, key, "<key>")] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, i), src) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
