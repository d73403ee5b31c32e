"""Say-as through the real Asterisk: a Mandarin caller of flows/bank.yaml hears the balance
from the Mandarin clips ``ivr serve`` rendered at start-up, and Asterisk never runs a SAY.

What Asterisk played is read from its own log (messages.log at verbose 3: ``<PJSIP/...>
Playing 'ivr/say/zh/<hash>.slin' (escape_digits=) (sample_offset 0) (language 'en')``); the
server's log keeps say-as clips out (they could spell an account number), so it only shows
that no SAY command was sent.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from helpers import Records, dial, spec
from serve import ACCOUNT, IvrServe

from ivr.flow.prompts import tts_file
from ivr.flow.sayas import clip_file, rules_for
from ivr.lab import Lab

pytestmark = [pytest.mark.asterisk, pytest.mark.usefixtures("no_leftover_calls")]

PLAYING = re.compile(
    # res_agi's STREAM FILE and file.c's (SAY's) lines; both end with the language
    r"<(?P<channel>[^>]+)> Playing '(?P<file>[^']+)\.\w+' .*?\(language '(?P<lang>[^']*)'\)"
)
BALANCE = "一千两百三十四元五角"  # serve.BALANCE, 1234.50


def asterisk_played(lab: Lab, since: int) -> list[tuple[str, str, str]]:
    """(channel, sound, language) of every file Asterisk played after byte ``since``."""
    with lab.log_path("messages.log").open("rb") as fh:
        fh.seek(since)
        text = fh.read().decode(errors="replace")
    return [(m["channel"], m["file"], m["lang"]) for m in PLAYING.finditer(text)]


async def test_a_mandarin_caller_hears_the_balance_from_the_mandarin_clips(
    lab: Lab, records: Records, ivr_server: IvrServe
) -> None:
    rules = rules_for("zh")
    assert rules is not None
    words = {f"ivr/{clip_file(w, 'zh')}": w for w in rules.clips}
    log_from, messages = ivr_server.log_size(), lab.log_size("messages.log")
    # "2" (Mandarin) during the language prompt; "1" (balance) during the 10 s menu; the
    # account during the 7 s collect prompt, one digit a second; "1" while the read-back's
    # "确认请按1" plays (7 s of "您输入的账号是" and clips, then it); then silence: the
    # balance, the last menu (7 s), its 5 s timeout, goodbye, and the server hangs up.
    keys = ("2", "1", *ACCOUNT, "#", "1")
    gaps = (4.0, 3.0, *[1.0] * len(ACCOUNT), 9.0)
    call = replace(spec("200", "".join(keys), first_digit_after_s=3.0, hold_s=60), gaps_s=gaps)
    result = await dial(lab, call)
    assert result.ok, result
    record = await records.one()
    assert record.flow == "bank" and record.language == "zh", record
    assert record.path[-4:] == ["fetch_balance", "tell_balance", "anything_else", "goodbye"]
    assert ("balance", "confirm", "1") in [(i.node, i.kind, i.value) for i in record.inputs]

    played = asterisk_played(lab, messages)
    assert played and len({channel for channel, _, _ in played}) == 1, played  # this call
    sounds = [sound for _, sound, _ in played]
    intro = f"ivr/{tts_file('您的可用余额是', 'zh')}"
    at = sounds.index(intro)
    assert "".join(words.get(s, "?") for s in sounds[at + 1 : at + 11]) == BALANCE, sounds
    assert sounds[at + 11] == f"ivr/{tts_file('返回主菜单请按9，结束通话请挂机。', 'zh')}"  # noqa: RUF001
    # the account was read back from the clips too (cut short by the caller's "1" or not)
    at = sounds.index(f"ivr/{tts_file('您输入的账号是', 'zh')}")
    assert "".join(words.get(s, "?") for s in sounds[at + 1 : at + 9]) == "一二三四五六七八"
    # no stock sound at all: SAY NUMBER/DIGITS would play digits/1, digits/thousand, ...
    assert [s for s in sounds if not s.startswith("ivr/")] == []
    # Asterisk was told the call's language: the flow's (en) at the start, then the
    # caller's choice (zh), so its own sounds and the fallback's apology follow the caller
    languages = [lang for _, _, lang in played]
    assert languages[0] == "en" and languages[-1] == "zh", languages
    server_log = ivr_server.log_text(log_from)
    sent = re.findall(rf"\[{re.escape(record.call_id)}\].* -> (\S+ \S+)", server_log)
    assert "SET VARIABLE" in sent and not [c for c in sent if c.startswith("SAY ")], sent
