"""What an answered outbound call does once Asterisk hands it to us (``?job=<id>``).

- a **survey** call asks the flow's survey and stores the answers against the original call
  (``attach_survey``: one survey per call), without a call record of its own;
- a **campaign** call runs the flow from its start with the call list's columns as
  variables and leaves a call record (variable ``campaign``);
- a **callback** call tells the callee who is calling and puts them in the queue node's queue
  with a high ``QUEUE_PRIO``, so they go ahead of callers who arrived after their request; it
  leaves a call record of its own with ``callback_for`` = the original call.
"""

from __future__ import annotations

import logging

from ivr.call.channel import Channel, Prompt
from ivr.call.events import survey_answered
from ivr.call.record import CallRecord
from ivr.errors import CallHangup
from ivr.flow import model as m
from ivr.outbound.jobs import Outbound
from ivr.runtime.interpreter import CallRun, Services
from ivr.store.outbound import Job
from ivr.store.records import RecordStore

log = logging.getLogger("ivr.outbound.answer")

CALLBACK_PRIORITY = "10"  # Queue() serves higher QUEUE_PRIO first


async def run_job(
    job_id: str,
    flow: m.Flow | None,
    channel: Channel,
    services: Services,
    store: RecordStore,
    outbound: Outbound,
) -> CallRecord | None:
    """Run outbound job ``job_id`` on the answered ``channel``; the callback's record, if any.
    ``flow`` is None when the job's flow was removed while the call rang."""
    job = await outbound.answered(int(job_id)) if job_id.isdigit() else None
    if job is None:
        log.error("outbound call for unknown or finished job %r; hanging up", job_id)
        await channel.hangup()
        return None
    if flow is None or job.flow != flow.name:  # claimed above: close it, never 'answered'
        reason = (
            f"flow {job.flow} was removed while the call rang"
            if flow is None
            else f"the answered call asked for flow {flow.name}, not {job.flow}"
        )
        log.error("[%s] %s call %d: %s; hanging up", job.call_id, job.kind, job.id, reason)
        await outbound.failed(job.id, "wrong flow", reason)
        await channel.hangup()
        return None
    if job.kind == "survey":
        await _survey(job, flow, channel, services, store, outbound)
        return None
    if job.kind == "campaign":
        return await _campaign(job, flow, channel, services, store, outbound)
    return await _callback(job, flow, channel, services, store, outbound)


async def _survey(
    job: Job,
    flow: m.Flow,
    channel: Channel,
    services: Services,
    store: RecordStore,
    outbound: Outbound,
) -> None:
    spec = flow.surveys.get(job.target)
    run = CallRun(flow, channel, services)
    try:
        await channel.answer()
        if spec is not None:
            await run.run_survey(spec, "outbound")
    except CallHangup:
        pass
    finally:
        survey = run.record.survey
        if survey is not None:
            stored = await store.attach_survey(job.call_id, survey)
            if stored and services.events is not None:
                services.events.emit(survey_answered(job.call_id, job.flow, survey))
            log.info(
                "[%s] outbound survey %s: %s%s",
                job.call_id,
                job.target,
                survey.status,
                "" if stored else " (not stored: the call already has a survey)",
            )
        await outbound.done(job.id, survey.status if survey else "no_survey")
        if not channel_gone(channel):
            await channel.hangup()


async def _callback(
    job: Job,
    flow: m.Flow,
    channel: Channel,
    services: Services,
    store: RecordStore,
    outbound: Outbound,
) -> CallRecord:
    run = CallRun(flow, channel, services)
    run.vars["callback_for"] = job.call_id
    await store.begin(run.record)
    try:
        await channel.set_variable("QUEUE_PRIO", CALLBACK_PRIORITY)
        await channel.play([Prompt("sound", "hello")])  # then the queue node's own prompts
    except CallHangup:
        pass
    record = await run.run(start=job.target)
    await store.finish(record)
    await outbound.done(job.id, record.queue.result if record.queue else record.outcome or "")
    return record


async def _campaign(
    job: Job,
    flow: m.Flow,
    channel: Channel,
    services: Services,
    store: RecordStore,
    outbound: Outbound,
) -> CallRecord:
    """A campaign call: the flow from its start, with the list's columns as variables."""
    run = CallRun(flow, channel, services)
    run.vars.update({k: v for k, v in job.variables.items() if k.isidentifier()})
    run.vars["campaign"] = job.target
    await store.begin(run.record)
    record = await run.run()
    await store.finish(record)
    result = "interested" if record.variables.get("interested") == "yes" else "answered"
    await outbound.done(job.id, result)
    return record


def channel_gone(channel: Channel) -> bool:
    return bool(getattr(channel, "hung_up", False))
