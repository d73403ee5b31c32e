"""AgiChannel over a scripted CommandSender: no sockets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.sound_files import write_wav

from ivr.asterisk.agi.channel import AgiChannel
from ivr.asterisk.agi.replies import Reply, parse_reply_line
from ivr.asterisk.agi.sounds import SoundLengths
from ivr.call.channel import CallInfo, Channel, Prompt, RecordRequest
from ivr.errors import AgiCommandInvalid, AgiCommandTimeout, AgiError, AgiUsageError, CallHangup

USAGE_520 = Reply(520, "", " Usage: STREAM FILE <file> <escape digits>", None, "520-...")


class ScriptedSender:
    """Answers commands from a list; an exception in the list is raised instead."""

    def __init__(self, replies: Sequence[str | Reply | BaseException]) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, float | None]] = []

    async def __call__(self, command: str, timeout_s: float | None) -> Reply:
        self.sent.append((command, timeout_s))
        if not self.replies:
            raise AssertionError(f"unexpected command {command!r}")
        item = self.replies.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item if isinstance(item, Reply) else parse_reply_line(item)

    @property
    def commands(self) -> list[str]:
        return [c for c, _ in self.sent]


def make(
    *replies: str | Reply | BaseException, prefix: str = "ivr/"
) -> tuple[AgiChannel, ScriptedSender]:
    sender = ScriptedSender(replies)
    info = CallInfo(uniqueid="1718000000.42", caller_id="5551234")
    return AgiChannel(info, sender, sounds_prefix=prefix, command_timeout_s=3.0), sender


def test_agi_channel_is_a_channel() -> None:
    channel: Channel = make()[0]  # mypy checks the Protocol; runtime checks the shape
    assert channel.info.uniqueid == "1718000000.42"


async def test_answer_is_idempotent() -> None:
    channel, sender = make("200 result=0")
    await channel.answer()
    await channel.answer()
    assert sender.commands == ["ANSWER"]


async def test_answer_failure_is_hangup() -> None:
    channel, _ = make("200 result=-1")
    with pytest.raises(CallHangup):
        await channel.answer()
    assert channel.hung_up


async def test_play_file_names_and_escape_digit() -> None:
    channel, sender = make("200 result=0 endpos=100", "200 result=55 endpos=50")
    prompts = [
        Prompt("tts", "tts/abc123", "Welcome"),
        Prompt("sound", "hello-world"),
        Prompt("file", "never-played"),
    ]
    assert await channel.play(prompts, "17#") == "7"
    assert sender.commands == ["STREAM FILE ivr/tts/abc123 17#", "STREAM FILE hello-world 17#"]
    assert sender.sent[0][1] == 300.0 + 3.0  # length unknown (no sounds dir): a generous bound


async def test_play_without_digits_plays_all_and_sends_empty_escape() -> None:
    channel, sender = make("200 result=0 endpos=1", "200 result=0 endpos=2", prefix="")
    assert await channel.play([Prompt("file", "a"), Prompt("file", "b")]) == ""
    assert sender.commands == ['STREAM FILE a ""', 'STREAM FILE b ""']


async def test_play_ignores_a_digit_that_is_not_an_escape_digit() -> None:
    # 65 is "A" (a DTMF letter): not in [0-9*#], so playing goes on.
    channel, sender = make("200 result=65 endpos=1", "200 result=35 endpos=1")
    assert await channel.play([Prompt("file", "a"), Prompt("file", "b")], "#") == "#"
    assert len(sender.commands) == 2


async def test_play_minus_one_then_hangup_is_callhangup() -> None:
    channel, sender = make("200 result=-1 endpos=480", CallHangup("HANGUP"))
    with pytest.raises(CallHangup):
        await channel.play([Prompt("file", "a"), Prompt("file", "b")])
    assert sender.commands == ['STREAM FILE ivr/a ""', "NOOP"]
    assert channel.hung_up
    with pytest.raises(CallHangup):  # nothing more is sent once the caller is gone
        await channel.wait_for_digit(1)
    assert len(sender.commands) == 2


async def test_play_minus_one_on_live_channel_is_missing_sound() -> None:
    channel, _ = make("200 result=-1 endpos=0", "200 result=0")
    with pytest.raises(AgiError, match="sound missing") as info:
        await channel.play([Prompt("file", "nope")])
    assert not isinstance(info.value, CallHangup)
    assert not channel.hung_up


async def test_play_rejects_bad_escape_digits_and_kinds() -> None:
    channel, sender = make()
    with pytest.raises(ValueError):
        await channel.play([Prompt("file", "a")], "1\n")
    with pytest.raises(ValueError):
        await channel.play([Prompt("video", "a")])
    assert sender.commands == []


async def test_wait_for_digit() -> None:
    channel, sender = make("200 result=55", "200 result=0", "200 result=42", "200 result=35")
    assert await channel.wait_for_digit(2.5) == "7"
    assert await channel.wait_for_digit(0) == ""
    assert await channel.wait_for_digit(1) == "*"
    assert await channel.wait_for_digit(1) == "#"
    assert sender.sent[0] == ("WAIT FOR DIGIT 2500", 5.5)  # own timeout + command timeout
    assert sender.sent[1][0] == "WAIT FOR DIGIT 0"


async def test_wait_for_digit_ignores_non_dtmf_and_keeps_waiting() -> None:
    channel, sender = make("200 result=68", "200 result=57")  # "D" then "9"
    assert await channel.wait_for_digit(5) == "9"
    assert len(sender.commands) == 2
    second_ms = int(sender.commands[1].split()[-1])
    assert 0 < second_ms <= 5000


async def test_wait_for_digit_minus_one_is_hangup() -> None:
    channel, _ = make("200 result=-1")
    with pytest.raises(CallHangup):
        await channel.wait_for_digit(1)


async def test_say_commands() -> None:
    channel, sender = make("200 result=0", "200 result=49", "200 result=0")
    assert await channel.say_digits("0042") == ""
    assert await channel.say_number(17, "12") == "1"
    assert await channel.say_date(1718000000, "#") == ""
    assert sender.commands == [
        'SAY DIGITS 0042 ""',
        "SAY NUMBER 17 12",
        "SAY DATE 1718000000 #",
    ]
    with pytest.raises(ValueError):
        await channel.say_digits("12*")


async def test_variables() -> None:
    channel, sender = make("200 result=0", "200 result=1 (Li (VIP) Wei)", "200 result=1 ()",
                           "200 result=1", "200 result=1 (5551234)")  # fmt: skip
    assert await channel.get_variable("ACCOUNT") is None
    assert await channel.get_variable("CALLERID(name)") == "Li (VIP) Wei"
    assert await channel.get_variable("EMPTY") == ""
    await channel.set_variable("IVR_PATH", "main menu")
    assert await channel.get_full_variable("${CALLERID(num)}") == "5551234"
    assert sender.commands[3] == 'SET VARIABLE IVR_PATH "main menu"'


async def test_exec_result_and_unbounded_timeout() -> None:
    channel, sender = make("200 result=0", "200 result=-1", "200 result=-2")
    assert await channel.exec("Queue", "support,c") == 0
    assert await channel.exec("Dial", "PJSIP/100,30") == -1
    assert sender.sent[0] == ("EXEC Queue support,c", None)
    with pytest.raises(AgiError, match="no application"):
        await channel.exec("Qeueu", "support")


async def test_playback_deadline_follows_the_prompt_length(tmp_path: Path) -> None:
    # A 95 s legal disclaimer must not be cut at the 3 s command timeout.
    write_wav(tmp_path / "tts" / "disclaimer.wav", 95.0)
    write_wav(tmp_path / "beep.wav", 0.5)
    sender = ScriptedSender(["200 result=0 endpos=760000"] * 6)
    info = CallInfo(uniqueid="1718000000.42")
    channel = AgiChannel(
        info,
        sender,
        sounds_prefix="ivr/",
        command_timeout_s=3.0,
        sounds=SoundLengths(tmp_path),
        unknown_prompt_s=600.0,
    )
    await channel.play([Prompt("tts", "tts/disclaimer"), Prompt("sound", "hello-world")])
    await channel.exec("Playback", "ivr/tts/disclaimer&ivr/beep,noanswer")
    await channel.exec("Playback", "ivr/beep&vm-goodbye")  # one part of unknown length
    await channel.say_digits("123456")
    await channel.say_number(1234567)
    timeouts = [t for _, t in sender.sent]
    assert timeouts[0] == pytest.approx(95.0 + 3.0)
    assert timeouts[1] == pytest.approx(600.0 + 3.0)  # a stock sound: not on this machine
    assert timeouts[2] == pytest.approx(95.5 + 3.0)
    assert timeouts[3] == pytest.approx(600.0 + 0.5 + 3.0)
    assert 6.0 + 3.0 <= timeouts[4] <= 30.0  # generous estimates for spoken digits
    assert 7.0 + 3.0 <= timeouts[5] <= 60.0


async def test_queue_and_dial_have_no_deadline() -> None:
    channel, sender = make("200 result=0", "200 result=0", "200 result=0")
    await channel.exec("Queue", "support,c,,,600")
    await channel.exec("Dial", "PJSIP/100,30")
    await channel.exec("AudioSocket", "uuid,127.0.0.1:4574")
    assert [t for _, t in sender.sent] == [None, None, None]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("511 Command Not Permitted on a dead channel or intercept routine", CallHangup),
        ("510 Invalid or unknown command", AgiCommandInvalid),
        (USAGE_520, AgiUsageError),
        ("503 result=-2 Memory allocation failure", AgiError),
    ],
)
async def test_error_codes(reply: str | Reply, error: type[Exception]) -> None:
    channel, _ = make(reply)
    with pytest.raises(error) as info:
        await channel.set_variable("X", "1")
    if isinstance(info.value, AgiUsageError):
        assert info.value.usage == USAGE_520.data
    assert channel.hung_up is (error is CallHangup)


async def test_hangup_then_everything_raises_and_hangup_is_a_no_op() -> None:
    channel, sender = make("200 result=1")
    await channel.hangup()
    await channel.hangup()
    assert sender.commands == ["HANGUP"]
    with pytest.raises(CallHangup):
        await channel.answer()


async def test_hangup_when_asterisk_says_the_caller_left_first() -> None:
    channel, _ = make(CallHangup("HANGUP"))
    await channel.hangup()  # the goal is reached: no error
    assert channel.hung_up


async def test_timeout_propagates() -> None:
    channel, _ = make(AgiCommandTimeout("no reply"))
    with pytest.raises(AgiCommandTimeout):
        await channel.answer()


async def test_logs_carry_the_uniqueid(caplog: pytest.LogCaptureFixture) -> None:
    channel, _ = make(CallHangup("HANGUP"))
    with caplog.at_level(logging.DEBUG, logger="ivr.asterisk.agi"), pytest.raises(CallHangup):
        await channel.wait_for_digit(1)
    assert caplog.records
    assert all(getattr(r, "uniqueid", None) == "1718000000.42" for r in caplog.records)
    # printed once, by the log format ("[%(uniqueid)s]"), not repeated in the message
    assert not any("[1718000000.42]" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("reply", "ended", "key", "seconds"),
    [
        ("200 result=35 (dtmf) endpos=52000", "key", "#", 6.5),
        # silence: result is what ast_waitfor had left (ms), not a key (seen on Asterisk 22)
        ("200 result=110977 (timeout) endpos=51840", "silence", "", 6.48),
        ("200 result=0 (timeout) endpos=960000", "max", "", 120.0),
    ],
)
async def test_record_reads_how_the_message_ended(
    reply: str, ended: str, key: str, seconds: float
) -> None:
    channel, sender = make(reply)
    got = await channel.record(RecordRequest("/rec/c-n-1", "#", 120.0, 3, True))
    assert (got.ended, got.key, got.duration_s) == (ended, key, seconds)
    assert sender.sent == [("RECORD FILE /rec/c-n-1 wav # 120000 0 BEEP s=3", 123.0)]


async def test_record_hung_up_raises_call_hangup() -> None:
    channel, _ = make("200 result=-1 (hangup) endpos=8000", CallHangup("gone"))
    with pytest.raises(CallHangup):
        await channel.record(RecordRequest("/rec/c-n-1"))
