"""Outbound calls placed over AMI: queued callbacks and outbound post-call surveys.

Every outbound call is a row in the ``outbound`` table first (:class:`Outbound` books it;
the SQL is :class:`ivr.store.outbound.JobStore`'s), so it survives a restart and is never
placed twice:

- ``UNIQUE (kind, call_id)``: one callback and one survey per call at most;
- the attempt is written (``dialing``, attempts + 1) **before** ``Originate`` is sent, and a
  lost AMI answer is never re-sent: the row waits ``retry_after_s`` like a failed attempt;
- the booking, the attempt and the answer are committed with ``synchronous=FULL`` (synced:
  they survive a power loss, where the store's usual WAL commits may not);
- a restart turns rows left in ``dialing`` into a counted attempt, retried later; a row
  left ``answered`` reached its callee and is closed (``interrupted``), never dialled again.

The :class:`Dialer` wakes every ``poll_s`` and, target by target (a callback offer, a survey,
a campaign; callbacks and surveys first), picks due rows within the target's calling hours
and under its ``max_concurrent``, so rows that cannot go out now hide no others. It
originates ``channel`` into the dialplan context ``ivr-outbound``, which runs
``agi://.../<flow>?job=<id>``; the app then runs the survey (or puts the callback in the
queue ahead of later callers) and closes the row. A callback or survey keeps the hours and
limit it was booked with; one whose flow, queue node or survey is gone is ``held`` with a
reason instead of dialled, and so is a campaign call whose flow is gone (with no flow loaded
at all, jobs wait instead). An answered call that asks for another flow than its job's closes
the job as ``failed``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ivr.call.events import EventSink, callback_booked
from ivr.call.record import mask_number
from ivr.clock import Clock, system_clock
from ivr.flow.hours import BusinessHours, Holiday, parse_hours
from ivr.flow.model_values import CallbackOffer, OutboundSurvey, SurveySpec
from ivr.flow.numbers import NUMBER, CallPolicy, Refusal
from ivr.flow.queue_node import QueueNode
from ivr.runtime.context import BookedBy
from ivr.store.campaigns import CampaignStore
from ivr.store.nodes import NodeStore
from ivr.store.outbound import Booking, DailyLimits, Job, JobStore, Key, Target
from ivr.store.records import RecordStore
from ivr.store.starts import AttemptStarts, StartLimits, StartOutcome

log = logging.getLogger("ivr.outbound.jobs")

CONTEXT = "ivr-outbound"  # asterisk-conf/extensions.conf

# Work on many jobs (a big campaign's) goes in transactions of BATCH_ROWS rows (~40 ms of the
# write lock), PAUSE_S apart: SQLite's busy handler retries a waiting writer (ivr serve's
# call records) every 1-25 ms in its first 128 ms, so it gets in between two of them.
BATCH_ROWS = 10_000
PAUSE_S = 0.03


@dataclass(frozen=True)
class Campaign:
    """An outbound campaign's settings (table ``campaigns``)."""

    name: str
    flow: str
    rate: float
    max_concurrent: int
    hours: BusinessHours | None
    timezone: str
    state: str  # "active" | "paused"

    @property
    def target(self) -> Target:
        return Target("campaign", self.flow, self.name)


@dataclass(frozen=True)
class Rules:
    """When, and how many at once, calls of one callback offer, survey or campaign go out."""

    max_concurrent: int
    hours: BusinessHours | None  # None: any hour

    def open_at(self, now: float) -> bool:
        return self.hours is None or self.hours.status(datetime.fromtimestamp(now, UTC)) == "open"


CLOSED = Rules(0, None)

Offer = CallbackOffer | OutboundSurvey


def hours_to_json(hours: BusinessHours | None) -> str:
    """Calling hours as a job keeps them (``""``: any hour)."""
    if hours is None:
        return ""
    holidays = [[h.first.isoformat(), h.last.isoformat(), h.name] for h in hours.holidays]
    return json.dumps({"timezone": hours.zone.key, "week": hours.week, "holidays": holidays})


def hours_from_json(text: str) -> BusinessHours | None:
    """The inverse of :func:`hours_to_json`."""
    if not text:
        return None
    data = json.loads(text)
    week = tuple(tuple((int(start), int(end)) for start, end in day) for day in data["week"])
    holidays = tuple(
        Holiday(date.fromisoformat(first), date.fromisoformat(last), name)
        for first, last, name in data["holidays"]
    )
    return BusinessHours(ZoneInfo(data["timezone"]), week, holidays)


# OriginateResponse Reason codes (Asterisk's AST_CONTROL_*)
REASONS = {
    "0": "failed",
    "1": "hung up",
    "3": "no answer",
    "4": "answered",
    "5": "busy",
    "8": "congestion",
}


# A channel as Originate gets it: one line of safe characters (\Z: `$` allows a newline)
CHANNEL = re.compile(r"\A(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]+\Z")
DAY_S = 86400.0  # the number policy's daily limits look back this far


def dial_string(pattern: str, number: str) -> str:
    """``pattern`` with ``{number}``; the number must be digits (an optional leading +), the
    result one channel line (the flow loader checked the pattern; this is the last guard)."""
    if not NUMBER.match(number):
        raise ValueError(f"not a number we may dial: {mask_number(number)!r}")
    channel = pattern.replace("{number}", number)
    if not CHANNEL.match(channel):
        raise ValueError(f"not a channel we may dial: {pattern!r}")
    return channel


class Outbound:
    """Books and tracks outbound calls in the record store (the interpreter's OutboundPort):
    the policy (what to book, with which limits and rules, when) over :class:`JobStore`."""

    def __init__(self, store: RecordStore, clock: Clock = system_clock) -> None:
        self.table = JobStore(store)
        self.campaign_table = CampaignStore(store)
        self.nodes = NodeStore(store)
        self.starts = AttemptStarts(store)
        self.clock = clock
        # called after each new booking (the dialler wakes up instead of waiting its idle poll)
        self.on_booked: Callable[[], None] | None = None
        self.events: EventSink | None = None  # webhooks (callback.booked); None: off

    # -- booking (OutboundPort)
    async def book_callback(
        self, by: BookedBy, node: QueueNode, number: str, due_in_s: float, policy: CallPolicy
    ) -> Refusal | None:
        assert node.callback is not None
        return await self._book("callback", by, node.id, number, node.callback, due_in_s, policy)

    async def book_survey(
        self, by: BookedBy, survey: SurveySpec, policy: CallPolicy
    ) -> Refusal | None:
        assert survey.outbound is not None
        o = survey.outbound
        number = by.caller
        if await self.opted_out(number):
            return "opted_out"
        return await self._book("survey", by, survey.name, number, o, o.delay_s, policy)

    async def _book(
        self,
        kind: str,
        by: BookedBy,
        target: str,
        number: str,
        offer: Offer,
        due_in_s: float,
        policy: CallPolicy,
    ) -> Refusal | None:
        """One job, with the offer's calling hours and limit (a later edit of the flow does
        not change what the caller was promised), unless ``policy`` refuses the number. The
        policy is checked here again, whatever the caller of this checked, and the daily
        limits are counted in the transaction that inserts: two calls at once cannot both
        take the last booking of the day."""
        call_id = by.call_id
        refusal = policy.check(number)
        if refusal is not None:
            return refusal
        channel = dial_string(offer.dial, number)
        now = self.clock()
        booking = Booking(
            kind=kind,
            call_id=call_id,
            flow=by.flow,
            target=target,
            number=number,
            channel=channel,
            caller_id=offer.caller_id if isinstance(offer, OutboundSurvey) else "",
            due_at=now + due_in_s,
            max_attempts=offer.attempts,
            retry_after_s=offer.retry_after_s,
            hours_json=hours_to_json(offer.hours),
            max_concurrent=offer.max_concurrent,
            booked_by=by.caller.removeprefix("+"),
        )
        # rows created in the last 24 h by the injected clock
        limits = DailyLimits(policy.per_caller_per_day, policy.per_number_per_day, now - DAY_S)
        booked = await self.table.book(booking, limits, now)
        if booked in ("caller_limit", "number_limit"):
            log.info("[%s] %s to %s refused: %s", call_id, kind, mask_number(number), booked)
            return booked
        log.info(
            "[%s] %s to %s %s (due in %.0f s)",
            call_id,
            kind,
            mask_number(number),
            "booked" if booked == "booked" else "already booked",
            due_in_s,
        )
        if booked == "booked" and self.on_booked is not None:
            self.on_booked()
        if booked == "booked" and kind == "callback" and self.events is not None:
            self.events.emit(callback_booked(call_id, by.flow, target, number, booking.due_at))
        return None

    async def campaigns(self) -> dict[str, Campaign]:
        """Every campaign by name, with its calling hours parsed."""
        out = {}
        for row in await self.campaign_table.campaigns():
            tz = row.timezone
            hours = parse_hours(json.loads(row.hours_json), [], tz) if row.hours_json else None
            out[row.name] = Campaign(
                row.name, row.flow, row.rate, row.max_concurrent, hours, tz, row.state
            )
        return out

    # -- opt-out list
    async def opt_out(self, number: str) -> None:
        await self.table.opt_out(number, self.clock())

    async def opted_out(self, number: str) -> bool:
        return await self.table.opted_out(number)

    # -- the dialer's side
    async def due(self, limit: int = 20) -> list[Job]:
        """Due pending jobs of every kind, oldest first (for tools; the dialer selects per
        target, so that jobs it cannot place yet hide no others)."""
        return await self.table.due(self.clock(), limit)

    async def stranded(self, dead_after_s: float) -> list[tuple[str, Job]]:
        """Attempts of other nodes that stopped beating ``dead_after_s`` ago: ``(node, job)``."""
        return await self.nodes.stranded(self.clock(), dead_after_s)

    async def take_over(self, job: Job, dead_node: str) -> bool:
        """Requeue (or close, if answered) a dead node's attempt whose call is gone."""
        return await self.nodes.take_over(job, dead_node, self.clock())

    async def any_due(self) -> bool:
        """Whether any job (callback, survey, campaign call) is due now."""
        return await self.table.any_due(self.clock())

    async def due_targets(self) -> list[Target]:
        """Callback offers and surveys with jobs due now, one per set of booked rules, the
        longest waiting first (campaigns are listed by :meth:`campaigns`)."""
        return await self.table.due_targets(self.clock())

    async def in_progress(self) -> dict[Key, int]:
        """Calls ringing or answered (not done yet), per kind, flow and target."""
        return await self.table.in_progress()

    async def get(self, job_id: int) -> Job | None:
        return await self.table.get(job_id)

    async def jobs(self, status: str | None = None) -> list[Job]:
        """Every job (or those with ``status``), oldest first."""
        return await self.table.jobs(status)

    async def hold(self, target: Target, reason: str) -> int:
        """Keep due jobs of ``target`` from being dialled (its flow or node is gone), saying
        why; how many were held. At most BATCH_ROWS at once: the dialer's next round holds
        more (it dials none of them meanwhile)."""
        held = await self.table.hold(target, reason, self.clock(), BATCH_ROWS)
        if held:
            log.warning(
                "%d %s calls of %s/%s held: %s",
                held,
                target.kind,
                target.flow,
                target.target,
                reason,
            )
        return held

    async def release_campaign(self, name: str) -> int:
        """Campaign ``name``'s held calls back to pending, due now; how many."""
        return await self._release(functools.partial(self.table.release_campaign, name))

    async def release_jobs(self, ids: Sequence[int]) -> int:
        """These jobs back to pending, due now, those that are held; how many."""
        return await self._release(functools.partial(self.table.release_jobs, ids)) if ids else 0

    async def _release(self, batch: Callable[[float, int], Awaitable[int]]) -> int:
        """Held jobs back to pending, due now (held jobs were due already: their retry delay
        has passed), ``batch`` of BATCH_ROWS at a time, PAUSE_S apart."""
        released = 0
        while True:
            n = await batch(self.clock(), BATCH_ROWS)
            released += n
            if n < BATCH_ROWS:
                return released
            await asyncio.sleep(PAUSE_S)  # a waiting writer gets the lock

    async def start_attempt(self, job: Job) -> bool:
        """Mark the job ``dialing`` (attempt + 1) before dialling; False if it moved on."""
        return await self.table.start_attempt(job.id, self.clock())

    async def start_next(self, limits: StartLimits) -> StartOutcome:
        """Mark the oldest due job of ``limits.target`` ``dialing`` (as :meth:`start_attempt`),
        only in its campaign's next start slot and under the target's ``max_concurrent``,
        both shared by every node on the database."""
        return await self.starts.start_next(limits, self.clock())

    async def attempt_failed(self, job: Job, result: str) -> None:
        """No answer, busy, or an unknown fate: retry later, or give up after the last."""
        now = self.clock()
        await self.table.attempt_failed(job.id, result, now + job.retry_after_s, now)

    async def answered(self, job_id: int) -> Job | None:
        """The callee answered and the AGI call arrived: claim the job (once)."""
        claimed = await self.table.answered(job_id, self.clock())
        return await self.get(job_id) if claimed else None

    async def failed(self, job_id: int, result: str, reason: str) -> None:
        """Close an answered job that could not run its flow (the callee was reached: never
        dialled again by itself)."""
        await self.table.failed(job_id, result, reason, self.clock())

    async def done(self, job_id: int, result: str) -> None:
        await self.table.done(job_id, result, self.clock())

    async def recover(self) -> int:
        """At start-up: attempts cut off by the last stop count as failed attempts (how many
        will be retried). An ``answered`` job reached its callee: it is closed, never re-dialled
        (a second call to the same customer is worse than a cut-off one)."""
        closed, requeued = await self.table.recover(self.clock())
        if closed:
            log.warning(
                "%d answered outbound calls were cut off by the last stop: closed as "
                "'interrupted', not called again",
                closed,
            )
        return int(requeued)
