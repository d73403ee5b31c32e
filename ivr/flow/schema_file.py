"""The flow schema as a file for editors: its text (as shipped, or with the ``$id`` of the URL
it is served at), the copy ``ivr schema --write DIR`` puts next to the flows, and the modeline
that points a flow at that copy (yaml-language-server, e.g. VS Code's YAML extension)."""

from __future__ import annotations

import json
from pathlib import Path

from ivr.errors import IvrError
from ivr.flow.schema import flow_schema

SCHEMA_FILE = "flow.schema.json"  # the name written into a flows directory


def schema_text(schema_id: str | None = None) -> str:
    """The schema as JSON text, exactly the shipped file; with ``schema_id``, that ``$id``."""
    schema = flow_schema() if schema_id is None else {**flow_schema(), "$id": schema_id}
    return json.dumps(schema, indent=1, ensure_ascii=False) + "\n"


def write_schema(dest: Path) -> Path:
    """Write the schema into the directory ``dest`` (as :data:`SCHEMA_FILE`), or to ``dest``
    itself when it names a ``.json`` file; returns the file written."""
    target = dest / SCHEMA_FILE if dest.is_dir() else dest
    if target.suffix != ".json" or not target.parent.is_dir():
        raise IvrError(f"no such directory: {dest} (give the flows directory, e.g. flows/)")
    target.write_text(schema_text(), encoding="utf-8")
    return target


def modeline(schema_file: Path) -> str:
    """The first line of a flow next to ``schema_file`` that makes editors check it."""
    return f"# yaml-language-server: $schema=./{schema_file.name}"
