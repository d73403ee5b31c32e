"""The ``queue`` node: check the queue, announce the wait, offer a callback, run ``Queue()``.

Sans-IO towards Asterisk's manager: the interpreter sees the queue through :class:`QueuePort`
(AMI behind it, a fake in tests) and the call through its :class:`~ivr.call.channel.Channel`.

The estimated wait is computed, never guessed (:func:`estimate_wait_s`): with ``n`` agents
logged in and ``k`` of them free, the caller at ``position`` waits for ``position - k``
calls to end; ``n`` agents finish a call every ``talk / n`` seconds on average, so the wait is
``(position - k) * talk / n``, with ``talk`` the queue's recent average talk time. Without any
talk-time history, the queue's average hold time stands in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ivr.call.channel import DTMF_DIGITS
from ivr.call.queue import QueueState
from ivr.call.record import QueueResult, QueueVisit, mask_number
from ivr.errors import CallHangup
from ivr.flow.model_values import CallbackOffer, SurveySpec
from ivr.flow.numbers import NUMBER, CallPolicy, Refusal, effective
from ivr.flow.queue_node import QueueNode
from ivr.runtime.call_recording import start_recording
from ivr.runtime.context import BookedBy, CallContext, OutboundPort, QueuePort, QueueWatch
from ivr.runtime.queue_speech import announce, apologise, ask_number, read_back
from ivr.runtime.screenpop import offer_to_agent

__all__ = [
    "NUMBER",
    "OutboundPort",
    "QueuePort",
    "QueueWatch",
    "booked_by",
    "estimate_wait_s",
    "run_queue",
]

# Asterisk's QUEUESTATUS when Queue() returns without an agent
_UNAVAILABLE = {"JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL", "FULL"}
# asterisk-conf/queues.conf `context`: a key pressed during the hold music that is an
# extension there makes Queue() return with the channel moved to it (QUEUESTATUS unset).
EXIT_CONTEXT = "ivr-queue-exit"
# Set once a callback was refused (the reason): the call is offered none again.
REFUSED = "callback_refused"
Booking = Literal["booked", "declined", "refused"]


@dataclass(frozen=True)
class Refused:
    """A number the policy will not call (``number`` may be empty: none was given)."""

    reason: Refusal
    number: str = ""


def estimate_wait_s(position: int, state: QueueState) -> float:
    """Expected seconds until an agent answers the caller at ``position`` (1 = next)."""
    ahead = position - state.available
    if ahead <= 0:
        return 0.0
    per_call = state.talktime_s or state.holdtime_s
    return ahead * per_call / max(state.on_duty, 1)


async def run_queue(run: CallContext, node: QueueNode) -> str:
    """Run one ``queue`` node; returns the next target. Records ``run.record.queue``."""
    queues = run.services.queues
    state = await queues.state(node.queue) if queues is not None else None
    if state is not None:
        nobody = state.on_duty == 0 or (node.require_available and state.available == 0)
        if nobody:
            run.log.info(
                "queue %s: no agent (%d on duty, %d free)",
                node.queue,
                state.on_duty,
                state.available,
            )
            _visit(run, node, "no_agents", state)
            return node.when_unavailable
        position = state.callers + 1
        wait = estimate_wait_s(position, state)
        run.vars.update(
            queue_position=str(position),
            queue_wait_min=str(math.ceil(wait / 60)),
            queue_agents=str(state.available),
        )
        offer = node.callback if _may_offer(run) else None
        if offer is not None and wait >= offer.over_s:
            booking = await _offer_callback(run, node, offer, wait)
            if booking == "booked":
                _visit(run, node, "callback", state, position=position, expected=wait)
                return offer.then
            if booking == "refused" and offer.refused is not None:
                _visit(run, node, "callback_refused", state, position=position, expected=wait)
                return offer.refused
        await announce(run, node, position, wait)
    else:
        position, wait = 0, 0.0
        if queues is not None:  # AMI configured but down (AMI off: expected, said at start)
            run.log.warning(
                "queue %s: state unknown (AMI down?); joining without announcement", node.queue
            )
    return await _wait_in_queue(run, node, state, position, wait)


async def _wait_in_queue(
    run: CallContext, node: QueueNode, state: QueueState | None, position: int, wait: float
) -> str:
    await start_recording(run, node)  # consent asked before the wait is timed
    queues = run.services.queues
    watch = queues.watch(run.channel.info.uniqueid) if queues is not None else None
    started = run.services.clock()
    if node.music:
        await run.channel.set_variable("CHANNEL(musicclass)", node.music)
    visit = _visit(run, node, "abandoned", state, position=position, expected=wait)
    try:
        await offer_to_agent(run, node, position, wait if state is not None else None)
        while True:
            await run.channel.exec("Queue", f"{node.queue},c,,,{node.timeout_s}")
            status = await run.channel.get_variable("QUEUESTATUS") or ""
            key = "" if status else await _exit_key(run)
            if not key:
                break
            waited = run.services.clock() - started
            run.note_input(node, "dtmf", key)
            booking = await _callback_from_queue(run, node, key, wait - waited)
            offer = node.callback
            if booking == "booked" and offer is not None:
                visit.result, visit.wait_s = "callback", waited
                return offer.then
            if booking == "refused" and offer is not None and offer.refused is not None:
                visit.result, visit.wait_s = "callback_refused", waited
                return offer.refused
            # another key, no number confirmed, or refused with an apology: back in line
    except CallHangup:
        _settle(run, visit, watch, started, answered_hint=False)
        if visit.result == "answered" and node.survey:
            await _book_survey(run, node, run.flow.surveys[node.survey])
        raise
    finally:
        if watch is not None:
            watch.close()
    # With option c the caller comes back here after the agent hangs up.
    _settle(run, visit, watch, started, answered_hint=status in ("", "CONTINUE"))
    run.log.info(
        "queue %s: %s (QUEUESTATUS=%s, agent %s, waited %.0f s)",
        node.queue,
        visit.result,
        status or "-",
        visit.agent or "-",
        visit.wait_s,
    )
    if visit.result == "answered":
        if node.survey:
            await run.run_survey(run.flow.surveys[node.survey], "in_call")
        return node.next
    if status in _UNAVAILABLE:
        visit.result = "no_agents"
        return node.when_unavailable
    visit.result = "timeout"
    return node.when_timeout


async def _exit_key(run: CallContext) -> str:
    """The key that made Queue() return, if the caller left it by a key."""
    if await run.channel.get_variable("CONTEXT") != EXIT_CONTEXT:
        return ""
    key = await run.channel.get_variable("EXTEN") or ""
    return key if len(key) == 1 and key in DTMF_DIGITS else ""


async def _callback_from_queue(
    run: CallContext, node: QueueNode, key: str, left_s: float
) -> Booking:
    """The callback key pressed during the hold music: the offer's wait threshold holds
    here too (against the wait now), then the number is confirmed and booked."""
    offer = node.callback
    if offer is None or key != offer.key or run.services.outbound is None or not _may_offer(run):
        return "declined"
    wait = await _wait_now(run, node, left_s)
    if wait < offer.over_s:
        await _refuse(run, node, offer, "short_wait", "")
        return "refused"
    return await _book_callback(run, node, offer, wait, f"from the queue (key {key})")


async def _wait_now(run: CallContext, node: QueueNode, left_s: float) -> float:
    """The wait of a caller joining now (Queue() returned: the caller is out of line), or,
    without AMI, what was left of the estimate given on joining."""
    queues = run.services.queues
    state = await queues.state(node.queue) if queues is not None else None
    if state is None:
        return max(0.0, left_s)
    return estimate_wait_s(state.callers + 1, state)


def _may_offer(run: CallContext) -> bool:
    """Not in a callback call, and not again after a refusal."""
    return "callback_for" not in run.vars and REFUSED not in run.vars


def booked_by(run: CallContext) -> BookedBy:
    """The call, as the outbound port takes it (plain values)."""
    return BookedBy(run.record.call_id, run.flow.name, run.record.caller)


def number_policy(run: CallContext) -> CallPolicy:
    """The server's number policy narrowed by the flow the call is in."""
    return effective(run.services.numbers, run.flow.number_rules)


async def _book_survey(run: CallContext, node: QueueNode, survey: SurveySpec) -> None:
    """The caller hung up on the agent: call them back for the survey, if the policy lets."""
    if survey.outbound is None or run.services.outbound is None:
        return
    policy = number_policy(run)
    refusal = policy.check(run.record.caller) or await run.services.outbound.book_survey(
        booked_by(run), survey, policy
    )
    if refusal is not None:
        run.note_input(node, "survey_refused", refusal)
        run.log.info(
            "survey %s: no outbound survey to %s (%s)",
            survey.name,
            mask_number(run.record.caller),
            refusal,
        )


def _visit(
    run: CallContext,
    node: QueueNode,
    result: QueueResult,
    state: QueueState | None,
    *,
    position: int = 0,
    expected: float | None = None,
) -> QueueVisit:
    visit = QueueVisit(
        node.queue,
        result,
        position=position,
        expected_wait_s=expected,
        agents_available=state.available if state is not None else 0,
    )
    run.record.queue = visit
    return visit


def _settle(
    run: CallContext,
    visit: QueueVisit,
    watch: QueueWatch | None,
    started: float,
    answered_hint: bool,
) -> None:
    """Fill the visit from AMI's events (who answered, hold and talk time)."""
    elapsed = run.services.clock() - started
    if watch is not None and watch.agent:
        visit.result, visit.agent = "answered", watch.agent
        visit.wait_s = watch.hold_s
        visit.talk_s = watch.talk_s or max(0.0, elapsed - watch.hold_s)
    elif answered_hint:  # no AMI events (AMI down): Queue()'s status says so
        visit.result, visit.wait_s = "answered", elapsed
    else:
        visit.wait_s = elapsed
    if visit.result == "answered":
        run.agent_reached = True


async def _offer_callback(
    run: CallContext, node: QueueNode, offer: CallbackOffer, wait: float
) -> Booking:
    """Offer a callback; book it when the caller accepts and confirms a number."""
    if run.services.outbound is None:
        return "declined"
    key = await run.say([offer.prompt], offer.key) or await run.channel.wait_for_digit(5.0)
    if key != offer.key:
        return "declined"
    run.note_input(node, "dtmf", key)
    return await _book_callback(run, node, offer, wait, "before joining")


async def _book_callback(
    run: CallContext, node: QueueNode, offer: CallbackOffer, wait: float, how: str
) -> Booking:
    """Confirm the number to call back, then book the callback (due after ``wait``)."""
    assert run.services.outbound is not None
    policy = number_policy(run)
    number = await _confirm_number(run, node, policy)
    if number is None:
        return "declined"
    if isinstance(number, Refused):
        await _refuse(run, node, offer, number.reason, number.number)
        return "refused"
    refusal = await run.services.outbound.book_callback(booked_by(run), node, number, wait, policy)
    if refusal is not None:  # a daily limit, counted where bookings are stored
        await _refuse(run, node, offer, refusal, number)
        return "refused"
    run.log.info(
        "queue %s: callback booked %s to %s, due in %.0f s",
        node.queue,
        how,
        mask_number(number),
        wait,
    )
    return "booked"


async def _refuse(
    run: CallContext, node: QueueNode, offer: CallbackOffer, reason: Refusal, number: str
) -> None:
    """Never a silent drop: the record says why, and the caller hears the flow's branch
    (taken by the caller of this function) or an apology before going on in line."""
    run.vars[REFUSED] = reason
    run.note_input(node, "callback_refused", reason)
    run.log.info(
        "queue %s: callback to %s refused (%s)", node.queue, mask_number(number) or "-", reason
    )
    if offer.refused is None:
        await apologise(run)


async def _confirm_number(
    run: CallContext, node: QueueNode, policy: CallPolicy
) -> str | Refused | None:
    """The number to call back, confirmed with 1 after it is read back ("you entered
    <digits>, if that is right press 1"); None when the caller confirms none.

    By default only the caller's own number: another key refuses the callback. A flow with
    ``edit: true`` lets the caller key another one (ending with #), checked before it is read
    back; a withheld or refused caller id then asks for one at once."""
    own = run.vars.get("caller_id", "")
    refusal = policy.check(own) if NUMBER.match(own) else "no_caller_number"
    if refusal is not None and not policy.edit:
        return Refused(refusal, own if NUMBER.match(own) else "")
    number = own if refusal is None else ""
    for _ in range(3):
        if number:
            key = await read_back(run, number)
            if key == "1":
                run.note_input(node, "confirm", "1")
                return number
            if not policy.edit:
                return Refused("edit_not_allowed", number) if key else None
        key = await ask_number(run)
        number = await _read_number(run, key)
        run.note_input(node, "dtmf", mask_number(number))
        if number and (refusal := policy.check(number)) is not None:
            return Refused(refusal, number)
    return None


async def _read_number(run: CallContext, first: str) -> str:
    digits = first
    while len(digits) < 16:  # one more than E.164 allows: a longer entry is refused
        digit = await run.channel.wait_for_digit(5.0)
        if digit in ("", "#"):
            break
        digits += digit
    return digits
