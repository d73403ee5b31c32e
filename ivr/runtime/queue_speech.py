"""What the queue node says itself: the caller's place and wait, and the callback number read
back for confirmation.

In a language with say-as rules (:mod:`ivr.flow.sayas`) these are the language's own rendered
clips ("您排在第三位。预计等待五分钟。"); in another, Asterisk's stock sounds and ``SAY``
commands as before (English unless that language's sounds are installed).
"""

from __future__ import annotations

import math

from ivr.call.channel import Prompt
from ivr.flow.queue_node import QueueNode
from ivr.flow.sayas import rules_for
from ivr.runtime.context import CallContext
from ivr.runtime.speak import clips, set_language

KEYS = "0123456789*#"  # any key stops the read-back (1 confirms)
# Said when a number is refused and the offer has no `refused:` branch (stock sounds)
APOLOGY = [
    Prompt("sound", "im-sorry", "I'm sorry."),
    Prompt("sound", "feature-not-avail-line", "That feature is not available on this line."),
]
ASK_NUMBER = [Prompt("sound", "vm-enter-num-to-call"), Prompt("sound", "vm-then-pound")]


async def announce(run: CallContext, node: QueueNode, position: int, wait: float) -> None:
    """The flow's own announcement, else the caller's place in line and the expected wait
    (nothing for the next caller)."""
    if node.announce is not None:
        await run.say([node.announce])
        return
    if position <= 1:
        return
    language = run.vars["language"]
    rules = rules_for(language)
    if rules is not None:
        words = rules.queue_position(position)
        if wait >= 60:
            words += rules.queue_wait(math.ceil(wait / 60))
        await run.channel.play(clips(words, language))
        return
    # Asterisk's stock queue sounds: "there are" N "calls waiting"; "hold time" M "minutes"
    ch = run.channel
    await set_language(ch, language)
    await ch.play([Prompt("sound", "queue-thereare")])
    await ch.say_number(position - 1)
    await ch.play([Prompt("sound", "queue-callswaiting")])
    if wait >= 60:
        await ch.play([Prompt("sound", "queue-holdtime")])
        await ch.say_number(math.ceil(wait / 60))
        await ch.play([Prompt("sound", "queue-minutes")])


async def read_back(run: CallContext, number: str) -> str:
    """ "You entered <digits>, if that is right press 1"; the key pressed (waits 5 s after)."""
    ch = run.channel
    language = run.vars["language"]
    rules = rules_for(language)
    if rules is not None:
        key = await ch.play(clips(rules.read_back(number.lstrip("+")), language), KEYS)
        return key or await ch.wait_for_digit(5.0)
    await set_language(ch, language)
    key = await ch.play([Prompt("sound", "you-entered")], KEYS)
    key = key or await ch.say_digits(number.lstrip("+"), KEYS)
    key = key or await ch.play([Prompt("sound", "if-correct-press")], KEYS)
    key = key or await ch.say_digits("1", KEYS)
    return key or await ch.wait_for_digit(5.0)


async def ask_number(run: CallContext) -> str:
    """Ask for the number to call back, ending with #; the first digit, if keyed already."""
    language = run.vars["language"]
    rules = rules_for(language)
    said = ASK_NUMBER if rules is None else clips([rules.queue.enter_number], language)
    return await run.channel.play(said, "0123456789")


async def apologise(run: CallContext) -> None:
    """No callback on this line (a refused number, and the flow has no branch for it)."""
    language = run.vars["language"]
    rules = rules_for(language)
    said = APOLOGY if rules is None else clips([rules.queue.sorry], language)
    await run.channel.play(said)
