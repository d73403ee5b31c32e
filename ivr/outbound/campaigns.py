"""Outbound campaigns: a call list (CSV) dialled by ``ivr serve``'s dialer, a flow on answer.

``ivr campaign start list.csv --flow offer`` writes the campaign and one outbound row per
number into the server's database; the running server's dialer places them within the
campaign's hours, at most ``rate`` per second and ``max_concurrent`` at once. Each number is
called at most once per campaign (``campaign:<name>:<number>`` is unique), so ``start`` can be
re-run with a longer list, and ``pause``/``resume`` never call anyone twice. The list goes in
in short transactions, so a running server's call records are never locked out for long (the
dialer may start on the first numbers while the rest go in); an import cut off says how far
it got, and running it again adds the rest. Answered calls
run the flow and leave a call record (variables ``campaign`` and the list's columns);
``status`` counts what happened. The SQL is :class:`ivr.store.campaigns.CampaignStore`'s.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.clock import Clock, system_clock
from ivr.errors import CampaignError, HoursSpecError, StoreError
from ivr.flow.hours import parse_hours
from ivr.flow.numbers import NUMBER
from ivr.outbound.jobs import PAUSE_S, dial_string
from ivr.store.campaigns import CampaignCall, CampaignStore
from ivr.store.records import RecordStore

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
MAX_VALUE = 200  # characters per list value
# An import holds the database's write lock for about BATCH_S per transaction (the live
# server's call records wait that long at most), then lets go for PAUSE_S (see ivr.outbound.jobs).
BATCH_S = 0.05

log = logging.getLogger("ivr.outbound.campaigns")

DIAL = re.compile(r"^(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]*\{number\}[A-Za-z0-9_.@:+-]*$")


@dataclass(frozen=True)
class CallList:
    rows: list[dict[str, str]]  # "number" plus the other columns
    duplicates: int
    rejected: list[str]  # "line N: reason"


def read_list(path: str | Path) -> CallList:
    """Read a CSV call list with a header; ``number`` is required, other columns become flow
    variables. Bad numbers are rejected by line, repeated numbers kept once."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "number" not in fields:
                raise CampaignError(
                    f"{path}: the first line must name the columns, with "
                    f"'number' among them (found: {', '.join(fields) or 'none'})"
                )
            bad = [c for c in fields if not COLUMN.match(c)]
            if bad:
                raise CampaignError(f"{path}: column names must be identifiers: {bad}")
            rows, seen, rejected, duplicates = [], set(), [], 0
            for line, row in enumerate(reader, start=2):
                number = (row.get("number") or "").strip().replace(" ", "")
                if not NUMBER.match(number):
                    rejected.append(f"line {line}: {number!r} is not a number to call")
                    continue
                if number.lstrip("+") in seen:  # +8613... and 8613... are one number
                    duplicates += 1
                    continue
                values = {k: (v or "").strip() for k, v in row.items() if k and k != "number"}
                if any(len(v) > MAX_VALUE for v in values.values()):
                    rejected.append(f"line {line}: a value is longer than {MAX_VALUE} chars")
                    continue
                seen.add(number.lstrip("+"))
                rows.append({"number": number, **values})
    except OSError as exc:
        raise CampaignError(f"{path}: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise CampaignError(f"{path}: not a CSV file: {exc}") from None
    return CallList(rows, duplicates, rejected)


@dataclass(frozen=True)
class Settings:
    name: str
    flow: str
    dial: str  # PJSIP/{number}@trunk
    rate: float = 1.0
    max_concurrent: int = 2
    hours: dict[str, Any] | None = None  # a flow `open:` map, e.g. {"mon-fri": "09:00-20:00"}
    timezone: str = "UTC"
    attempts: int = 2
    retry_after_s: float = 600.0
    caller_id: str = ""


def _check(s: Settings) -> None:
    """Refuse settings the dialer could not use, before anything is written."""
    if not NAME.match(s.name):
        raise CampaignError(f"campaign name {s.name!r}: letters, digits, - and _ only")
    if s.rate <= 0 or s.max_concurrent < 1 or s.attempts < 1:
        raise CampaignError("rate must be > 0, max-concurrent and attempts >= 1")
    if s.hours is not None:
        try:
            parse_hours(s.hours, [], s.timezone)
        except HoursSpecError as exc:
            raise CampaignError(f"hours: {exc}") from None
    if not DIAL.match(s.dial):
        raise CampaignError(
            f"--dial {s.dial!r}: a channel with {{number}}, e.g. PJSIP/{{number}}@trunk"
        )


def _outbound_rows(s: Settings, calls: CallList, now: float) -> list[CampaignCall]:
    """The campaign call of each number of the list."""
    rows: list[CampaignCall] = []
    for row in calls.rows:
        variables = {k: v for k, v in row.items() if k != "number"}
        key = f"campaign:{s.name}:{row['number'].lstrip('+')}"  # UNIQUE: never added twice
        rows.append(
            (
                key,
                s.flow,
                s.name,
                row["number"],
                dial_string(s.dial, row["number"]),
                s.caller_id,
                now,
                s.attempts,
                s.retry_after_s,
                now,
                now,
                json.dumps(variables, ensure_ascii=False),
            )
        )
    return rows


def _stopped(name: str, written: int, total: int, added: int, why: object) -> str:
    return (
        f"campaign {name}: the import stopped after {written} of {total} numbers "
        f"({added} of them new): {why}. Run the same command again to add the rest "
        "(numbers already in the campaign are skipped)"
    )


class Campaigns:
    """Campaign rows in the record store (used by the ``ivr campaign`` command)."""

    def __init__(
        self, store: RecordStore, clock: Clock = system_clock, *, batch_s: float = BATCH_S
    ) -> None:
        self.table = CampaignStore(store)
        self.clock = clock
        self.batch_s = batch_s

    async def start(self, s: Settings, calls: CallList) -> int:
        """Create (or extend) a campaign; returns how many numbers were added.

        The list goes in in transactions of about ``batch_s`` each, with a pause between
        them, so that the live server's call records never wait long for the write lock. A
        cut-off import says how far it got; running it again adds the rest (each number is
        in a campaign once)."""
        _check(s)
        now = self.clock()
        rows = _outbound_rows(s, calls, now)  # built before any lock is taken
        await self.table.save(  # a campaign keeps its flow: CampaignError if s.flow is another
            name=s.name,
            flow=s.flow,
            rate=s.rate,
            max_concurrent=s.max_concurrent,
            hours_json=json.dumps(s.hours) if s.hours else "",
            timezone=s.timezone,
            now=now,
        )
        written = added = 0
        try:
            while written < len(rows):
                if written:
                    await asyncio.sleep(PAUSE_S)  # a waiting writer's busy handler gets in
                n, new = await self.table.insert_calls(rows, written, self.batch_s)
                written, added = written + n, added + new
        except StoreError as exc:
            raise CampaignError(_stopped(s.name, written, len(rows), added, exc)) from exc
        except asyncio.CancelledError:  # Ctrl-C: the CLI's user must know what is in
            why = "interrupted (the batch being written may have gone in too)"
            log.warning("%s", _stopped(s.name, written, len(rows), added, why))
            raise
        return added

    async def set_state(self, name: str, state: str) -> None:
        """``active`` or ``paused``; the dialer stops starting calls at once when paused
        (calls already ringing go on)."""
        if not await self.table.set_state(name, state):
            raise CampaignError(f"no campaign named {name!r}")

    async def status(self, name: str) -> dict[str, Any]:
        """The campaign's settings and counts: calls by state, results, and interested."""
        counts = await self.table.counts(name)
        if counts is None:
            raise CampaignError(f"no campaign named {name!r}")
        return {
            "name": name,
            "flow": counts.flow,
            "rate": counts.rate,
            "max_concurrent": counts.max_concurrent,
            "state": counts.state,
            "numbers": sum(counts.by_status.values()),
            "by_status": counts.by_status,
            "results": counts.results,
            "interested": counts.interested,
        }
