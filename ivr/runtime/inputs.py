"""The steps that wait for the caller: ``menu`` (keys, or speech where it can be heard) and
``collect`` (digits, with an optional read-back to confirm), each with its retries on no
input and no match.

Like queueing and surveys, they see the call through :class:`CallContext`, not the
interpreter; the menu history ``back`` returns through is handed in by the interpreter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ivr.call.channel import ListenRequest
from ivr.flow import confirm_words
from ivr.flow import model as m
from ivr.flow.model_values import BACK, REPEAT, PromptSpec
from ivr.runtime.context import CallContext
from ivr.runtime.speak import read_digits

__all__ = ["run_collect", "run_menu"]


async def run_menu(call: CallContext, node: m.MenuNode, history: list[str]) -> str:
    """Ask the menu until the caller picks an option or the retries run out; where to go
    next. ``history`` is the call's menu history (menu ids, this one pushed), for ``back``."""
    if not history or history[-1] != node.id:
        history.append(node.id)
    counts = {"no_input": 0, "no_match": 0}
    retry: PromptSpec | None = None
    short = False
    keys = node.options
    while True:
        main = node.short_prompt if short and node.short_prompt else node.prompt
        kind, key, said, unsure = await _menu_input(call, node, [retry, main])
        option = keys.get(key)
        if option is not None and unsure and not await _confirmed_choice(call, node, option, said):
            counts["no_match"] += 1  # "no, I did not say that": the menu is asked again
            if counts["no_match"] > node.no_match.max:
                return node.no_match.then or node.otherwise
            retry, short = None, True
            continue
        if option is None:
            kind = "no_input" if kind == "no_input" else "no_match"
            call.note_input(node, kind, said)
            counts[kind] += 1
            rule: m.Retry = getattr(node, kind)
            if counts[kind] > rule.max:
                return rule.then or node.otherwise
            retry, short = rule.prompt, True
            continue
        if not unsure:
            call.note_input(node, kind, said)
        for name, tpl in option.assign.items():
            call.vars[name] = tpl.render(call.vars)
        if option.target == REPEAT:
            retry, short = None, False
            continue
        if option.target == BACK:
            history.pop()
            return history.pop() if history else node.id
        return option.target


async def _menu_input(
    call: CallContext, node: m.MenuNode, prompts: list[PromptSpec | None]
) -> tuple[str, str, str, bool]:
    """One attempt: ``(kind, option key, what the caller did, unsure)``; kind is dtmf,
    speech, no_input or no_match; ``unsure``: a spoken choice to confirm first."""
    keys = node.options
    # '#' as an option key cannot also end input
    terminator = "" if any(node.terminator in k for k in keys) else node.terminator
    play = _prompter(call, prompts)
    if node.speech and call.can_hear():
        heard = await call.channel.listen(_listen_request(call, node, prompts))
        if heard.kind != "dtmf":
            return heard.kind, heard.choice or "", heard.value, heard.confirm
        play = _already(heard.value)  # the key that ended listening starts the digits
    digits = await read_digits(
        call.channel,
        play,
        max_digits=node.max_digits,
        timeout_s=node.timeout_s,
        inter_digit_timeout_s=node.inter_digit_timeout_s,
        terminator=terminator,
        # done once no longer key could still match (a unique option, or a dead end)
        complete=lambda d: not any(k != d and k.startswith(d) for k in keys),
    )
    return ("dtmf" if digits else "no_input"), digits, digits, False


async def _confirmed_choice(
    call: CallContext, node: m.MenuNode, option: m.MenuOption, said: str
) -> bool:
    """Ask "Did you say <the option's word>?"; true when the caller says yes or presses 1.
    Both the spoken choice and the answer go into the call record."""
    call.note_input(node, "speech", said)
    if option.confirm_prompt is None:  # confirm: never
        return True
    language = call.vars["language"]
    heard = await call.channel.listen(
        ListenRequest(
            prompts=call.prompts_for([option.confirm_prompt]),
            choices=confirm_words.answer_choices(language),
            language=language,
            barge_in=node.barge_in,
            min_speech_ms=node.min_speech_ms,
            no_input_timeout_s=node.timeout_s,
            max_speech_s=node.max_speech_s,
            min_confidence=node.min_confidence,
            confirm="never",
            flow=call.flow.name,
            node=node.id,
        )
    )
    call.note_input(node, "confirm", heard.value)
    return heard.choice == confirm_words.YES_KEY


def _listen_request(
    call: CallContext, node: m.MenuNode, prompts: list[PromptSpec | None]
) -> ListenRequest:
    return ListenRequest(
        prompts=call.prompts_for(prompts),
        choices=tuple((k, o.words) for k, o in node.options.items() if o.words),
        language=call.vars["language"],
        dtmf="dtmf" in node.inputs,
        barge_in=node.barge_in,
        min_speech_ms=node.min_speech_ms,
        no_input_timeout_s=node.timeout_s,
        max_speech_s=node.max_speech_s,
        min_confidence=node.min_confidence,
        accept_confidence=node.accept_confidence,
        confirm=node.confirm_mode,
        flow=call.flow.name,
        node=node.id,
    )


async def run_collect(call: CallContext, node: m.CollectNode) -> str:
    """Read digits into ``node.into`` until they are valid (and confirmed, if asked) or the
    retries run out; where to go next."""
    counts = {"no_input": 0, "no_match": 0}
    retry: PromptSpec | None = None
    while True:
        digits = await read_digits(
            call.channel,
            _prompter(call, [retry, node.prompt]),
            max_digits=node.max_digits,
            timeout_s=node.timeout_s,
            inter_digit_timeout_s=node.inter_digit_timeout_s,
            terminator=node.terminator,
        )
        valid = node.min_digits <= len(digits) <= node.max_digits and (
            node.pattern is None or node.pattern.fullmatch(digits) is not None
        )
        if valid and node.confirm is not None:
            valid = await _confirmed(call, node, digits)
            if not valid:
                retry = None
                continue
        if valid:
            call.note_input(node, "dtmf", digits, node.sensitive)
            call.vars[node.into] = digits
            return node.next
        kind = "no_match" if digits else "no_input"
        call.note_input(node, kind, digits, node.sensitive)
        counts[kind] += 1
        rule: m.Retry = getattr(node, kind)
        if counts[kind] > rule.max:
            return rule.then or node.otherwise
        retry = rule.prompt


async def _confirmed(call: CallContext, node: m.CollectNode, digits: str) -> bool:
    previous = call.vars.get(node.into)
    call.vars[node.into] = digits  # the confirm prompt reads the value back
    try:
        answer = await call.say([node.confirm], "12")
        answer = answer or await call.channel.wait_for_digit(node.timeout_s)
    finally:
        if previous is None:
            call.vars.pop(node.into, None)
        else:
            call.vars[node.into] = previous
    call.note_input(node, "confirm", answer)
    return answer == "1"


def _prompter(
    call: CallContext, prompts: list[PromptSpec | None]
) -> Callable[[str], Awaitable[str]]:
    async def play(escape: str) -> str:
        return await call.say(prompts, escape)

    return play


def _already(digit: str) -> Callable[[str], Awaitable[str]]:
    async def play(escape: str) -> str:
        return digit

    return play
