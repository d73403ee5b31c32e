"""Recording a queue call's agent leg (a queue's ``record:``), unless the caller refuses.

Just before ``Queue()`` the caller hears the consent prompt. The refuse key, during it or
within ``wait_s`` after it, means no recording: the record keeps an input event of kind
``recording_refused``, and no later queue of the call asks again. Otherwise ``MixMonitor``
starts on the caller's channel with option ``b``: it writes only while the channel is
bridged, so the file holds the conversation with the agent, both directions mixed, and not
the hold music, the announcements or whatever follows once the agent has hung up (a survey).
It stops when the call ends; a second queue of the same call adds to the same file.

The file is ``calls/<call id>.wav`` under the recordings directory (the same absolute path
for the server and Asterisk), named from the call id alone, cut to letters, digits and
``. _ -``: nothing the caller typed or said reaches a dialplan argument. The record keeps the
name relative to the directory (``CallRecord.recording``); the admin API serves it only from
under that directory, and the server's retention task removes it when it is old.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ivr.call.record import CALL_RECORDINGS
from ivr.flow.queue_node import QueueNode
from ivr.runtime.context import CallContext

__all__ = ["REFUSED", "recording_name", "start_recording"]

REFUSED = "recording_refused"  # the input event of a refusal
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# the directory goes into MixMonitor's arguments too: no comma, quote, space or parenthesis
_SAFE_DIR = re.compile(r"/[A-Za-z0-9_./-]*")


def recording_name(call_id: str) -> str:
    """The file of ``call_id``'s agent leg, relative to the recordings directory."""
    stem = _UNSAFE.sub("_", call_id).lstrip(".")[:96] or "call"
    return f"{CALL_RECORDINGS}/{stem}.wav"


async def start_recording(run: CallContext, node: QueueNode) -> None:
    """Ask for consent and start ``MixMonitor`` (see the module's notes); sets
    ``run.record.recording`` once it runs."""
    spec = node.record
    if spec is None or run.record.recording or _refused(run):
        return  # not asked for, already recording (an earlier queue), or refused earlier
    directory = run.services.recordings_dir
    if not _SAFE_DIR.fullmatch(directory):
        run.log.warning(
            "queue %s: record: needs an absolute recordings directory of letters, digits "
            "and _ . / - (have %r): not recording",
            node.queue,
            directory,
        )
        return
    key = await run.say([spec.consent], spec.refuse_key)
    if not key and spec.wait_s > 0:
        key = await run.channel.wait_for_digit(spec.wait_s)
    if key == spec.refuse_key:
        run.note_input(node, REFUSED, key)
        run.log.info("queue %s: the caller refused the recording", node.queue)
        return
    name = recording_name(run.record.call_id)
    await run.channel.exec("MixMonitor", f"{PurePosixPath(directory) / name},b")
    run.record.recording = name
    run.log.info("queue %s: recording the agent leg to %s", node.queue, name)


def _refused(run: CallContext) -> bool:
    return any(event.kind == REFUSED for event in run.record.inputs)
