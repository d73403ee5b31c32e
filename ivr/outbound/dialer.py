"""The dialler: wakes every ``poll_s`` while there is work (every ``idle_poll_s`` when there is
none, and at once after a booking) and places due outbound calls (:mod:`ivr.outbound.jobs`)
over AMI, target by target within each target's hours and ``max_concurrent`` (and a
campaign's ``rate``), both held for all the nodes on one database (:mod:`ivr.store.starts`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping

from ivr.asterisk.ami.boxes import AmiBoxes
from ivr.errors import AmiError
from ivr.flow import model as m
from ivr.flow.queue_node import QueueNode
from ivr.outbound.jobs import (
    CLOSED,
    CONTEXT,
    REASONS,
    Campaign,
    Offer,
    Outbound,
    Rules,
    hours_from_json,
)
from ivr.store.outbound import Job, Target
from ivr.store.starts import Pace, StartLimits

log = logging.getLogger("ivr.outbound")

# Originate's Reason codes as the metrics' result label (a bounded set; see jobs.REASONS)
RESULT_LABELS = {
    "0": "failed", "1": "hung_up", "3": "no_answer", "4": "answered", "5": "busy",
    "8": "congestion",
}  # fmt: skip


def _flow_missing(name: str, flows: Mapping[str, m.Flow]) -> Rules | str:
    """Why jobs of flow ``name`` are held; with no flow loaded at all (a missing or broken
    flows_dir, not an edit) they wait instead."""
    return f"flow {name} is not loaded (removed or renamed)" if flows else CLOSED


def _offer(flow: m.Flow, target: Target) -> Offer | str | None:
    """The flow's current offer behind callback or survey jobs (None: it no longer calls
    out), or why the jobs' survey or queue node is gone."""
    if target.kind == "survey":
        survey = flow.surveys.get(target.target)
        if survey is None:
            return f"survey {target.target} is not in flow {flow.name}"
        return survey.outbound
    node = flow.nodes.get(target.target)
    if not isinstance(node, QueueNode):
        return f"queue node {target.target} is not in flow {flow.name}"
    return node.callback


class Dialer:
    """Places due outbound calls over AMI. ``start()``, then ``await close()``.
    ``on_result(kind, result)`` hears how each Originate ended (:data:`RESULT_LABELS`,
    ``other`` for an unknown reason, ``ami_error`` when AMI failed): the metrics."""

    def __init__(
        self,
        outbound: Outbound,
        ami: AmiBoxes,
        flows: Callable[[], Mapping[str, m.Flow]],
        *,
        poll_s: float = 0.2,
        idle_poll_s: float = 1.0,
        ring_s: float = 30.0,
        reconcile_s: float = 10.0,
        dead_after_s: float = 30.0,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        self.outbound = outbound
        self.on_result = on_result
        self.ami = ami
        self.flows = flows
        self.poll_s = poll_s
        self.idle_poll_s = max(poll_s, idle_poll_s)
        self._wakeup = asyncio.Event()
        self._busy = False  # the last round found work: keep to poll_s (campaign pacing)
        self.reconcile_s = reconcile_s
        self.dead_after_s = dead_after_s  # a node this long without a heartbeat is gone
        self._reconciled_at = -math.inf
        outbound.on_booked = self.wake
        self.ring_s = ring_s
        self._task: asyncio.Task[None] | None = None
        self._dialing: dict[int, asyncio.Task[None]] = {}
        # campaign -> its next start slot as last read from the database (a lower bound: the
        # slot only moves later), so that a round before it asks nothing
        self._slot_at: dict[str, float] = {}
        self._campaigns: dict[str, Campaign] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._dialing.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Run a round now (a job was just booked) instead of at the next poll."""
        self._wakeup.set()

    async def _loop(self) -> None:
        while True:
            try:
                if self.ami.up:
                    await self.tick()
                    if time.monotonic() - self._reconciled_at >= self.reconcile_s:
                        self._reconciled_at = time.monotonic()
                        await self.reconcile()
            except Exception:  # the dialer must outlive any one bad row
                log.exception("outbound dialer round failed")
            # Idle, a round every idle_poll_s finds jobs another process added (a campaign
            # import); a booking here wakes it at once. Busy, every poll_s paces campaigns.
            pause = self.poll_s if self._busy or self._dialing else self.idle_poll_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wakeup.wait()
            self._wakeup.clear()

    async def reconcile(self) -> int:
        """Attempts left by nodes that stopped beating: each call is looked up on Asterisk by
        its channel id, and one that is gone is taken over (requeued, or closed if it had
        been answered); one still up goes on. How many were taken over."""
        taken = 0
        for node, job in await self.outbound.stranded(self.dead_after_s):
            try:
                if await self.ami.channel_exists(channel_id(job.id, job.attempts)):
                    continue  # still ringing or talking on Asterisk
            except AmiError as exc:  # cannot tell: never dial twice, ask next round
                log.warning("reconciling node %s: %s", node, exc)
                break
            if await self.outbound.take_over(job, node):
                taken += 1
                log.warning(
                    "[%s] %s call %d was %s on node %s, which stopped: taken over",
                    job.call_id,
                    job.kind,
                    job.id,
                    job.status,
                    node,
                )
        return taken

    async def tick(self) -> None:
        """One round: start due jobs target by target, each within its calling hours and
        limits, so that jobs one target cannot place now (a paused or closed campaign, a
        survey out of hours) never hide the jobs of another."""
        self._busy = await self.outbound.any_due()
        if not self._busy:
            return  # the usual round: one cheap read instead of three locked transactions
        self._campaigns = await self.outbound.campaigns()
        busy = Counter(await self.outbound.in_progress())  # ringing or in the call
        now = self.outbound.clock()
        targets = await self.outbound.due_targets()  # callbacks, surveys: few, go first
        for target in [*targets, *(c.target for c in self._campaigns.values())]:
            rules = self._rules(target)
            if isinstance(rules, str):
                await self.outbound.hold(target, rules)
                continue
            free = rules.max_concurrent - busy[target.key]
            if free > 0 and rules.open_at(now):
                busy[target.key] += await self._start(target, rules, free)

    async def _start(self, target: Target, rules: Rules, free: int) -> int:
        """Start up to ``free`` due jobs of ``target``, oldest first, each in its campaign's
        next start slot and under its ``max_concurrent``, both counted on every node by the
        store (the ``free`` this node read is a first guess); how many were started."""
        pace = self._pace(target)
        if pace is not None and self.outbound.clock() < self._slot_at.get(pace.campaign, 0.0):
            return 0  # not its turn yet
        limits = StartLimits(target, rules.max_concurrent, pace)
        started = 0
        for _ in range(free):
            outcome = await self.outbound.start_next(limits)
            if pace is not None and outcome.next_start_at:
                self._slot_at[pace.campaign] = outcome.next_start_at
            if outcome.job is None:
                if outcome.result == "taken":
                    continue  # another node started that one: the next
                break  # none due, its next slot is later, or the calls of every node fill it
            self._dialing[outcome.job.id] = asyncio.create_task(self._dial(outcome.job))
            started += 1
        return started

    def _pace(self, target: Target) -> Pace | None:
        """A campaign's start slots: one every ``1 / rate`` seconds; a round late by up to
        ``poll_s`` keeps the spacing, a later one earns no burst."""
        campaign = self._campaigns.get(target.target) if target.kind == "campaign" else None
        return None if campaign is None else Pace(campaign.name, 1 / campaign.rate, self.poll_s)

    def _rules(self, target: Target) -> Rules | str:
        """The target's calling rules, or why its jobs must not be placed (their flow or
        node is gone: the answered call would find nothing to run)."""
        flows = self.flows()
        if target.kind == "campaign":
            return self._campaign_rules(target, flows)
        flow = flows.get(target.flow)
        if flow is None:
            return _flow_missing(target.flow, flows)
        offer = _offer(flow, target)
        if isinstance(offer, str):
            return offer
        if target.max_concurrent is not None:  # as booked, whatever the flow says now
            return Rules(target.max_concurrent, hours_from_json(target.hours_json or ""))
        if offer is None:  # booked before jobs kept their rules, and nothing says when to call
            return f"{target.kind} no longer set in flow {flow.name}; its calling hours are unknown"
        return Rules(offer.max_concurrent, offer.hours)

    def _campaign_rules(self, target: Target, flows: Mapping[str, m.Flow]) -> Rules | str:
        campaign = self._campaigns.get(target.target)
        if campaign is None or campaign.state != "active":
            return CLOSED  # a paused campaign's jobs stay as they are
        if target.flow not in flows:
            return _flow_missing(target.flow, flows)
        return Rules(campaign.max_concurrent, campaign.hours)

    async def _dial(self, job: Job) -> None:
        try:
            log.info(
                "[%s] placing %s call %d (attempt %d of %d)",
                job.call_id,
                job.kind,
                job.id,
                job.attempts + 1,
                job.max_attempts,
            )
            reply = await self.ami.originate(
                job.channel,
                context=CONTEXT,
                exten="s",
                caller_id=job.caller_id,
                variables={"IVR_FLOW": job.flow, "IVR_JOB": str(job.id)},
                timeout_s=self.ring_s,
                channel_id=channel_id(job.id, job.attempts + 1),
                follows=job.call_id,  # from the box of the call it follows up, if any
            )
            answered = str(reply.get("Response", "")).lower() == "success"
            code = "4" if answered else str(reply.get("Reason"))
            self._report(job.kind, RESULT_LABELS.get(code, "other"))
            if not answered:
                reason = REASONS.get(str(reply.get("Reason")), f"reason {reply.get('Reason')}")
                await self.outbound.attempt_failed(job, reason)
                log.info("[%s] %s call %d: %s", job.call_id, job.kind, job.id, reason)
        except AmiError as exc:  # fate unknown: never re-sent at once
            self._report(job.kind, "ami_error")
            await self.outbound.attempt_failed(job, f"ami: {exc}")
            log.warning("[%s] %s call %d: %s", job.call_id, job.kind, job.id, exc)
        finally:
            self._dialing.pop(job.id, None)

    def _report(self, kind: str, result: str) -> None:
        if self.on_result is not None:
            self.on_result(kind, result)


def channel_id(job_id: int, attempt: int) -> str:
    """The uniqueid an attempt's channel gets (``Originate ChannelId``): how any node finds
    the call again on Asterisk."""
    return f"ivr-job-{job_id}-{attempt}"
