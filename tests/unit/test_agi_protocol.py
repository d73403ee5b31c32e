"""The sans-IO AGI core, from bytes: no sockets, no mocks."""

from __future__ import annotations

import doctest
import random
from pathlib import Path

import pytest
from support.fake_asterisk import build_env, env_block, parse_args

from ivr.asterisk.agi import commands, environment, replies
from ivr.asterisk.agi.commands import format_command, quote_arg
from ivr.asterisk.agi.environment import AgiEnvironment
from ivr.asterisk.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    AgiState,
    ConnectionClosed,
    EnvironmentReceived,
    Event,
    HangupReceived,
    Reply,
    parse_reply_line,
)
from ivr.call.channel import readable
from ivr.errors import LocalProtocolError, ProtocolError

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "fixtures" / "agi"

ENV = (
    b"agi_network: yes\n"
    b"agi_network_script: bank?lang=zh\n"
    b"agi_request: agi://127.0.0.1:4573/bank?lang=zh\n"
    b"agi_channel: PJSIP/sipp-00000001\n"
    b"agi_uniqueid: 1718000000.1\n"
    b"agi_callerid: 5551234\n"
    b"agi_calleridname: unknown\n"
    b"agi_arg_1: retail\n"
    b"agi_arg_2: two words\n"
    b"\n"
)


def drain(conn: AgiConnection) -> list[Event]:
    events: list[Event] = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return events


def ready(max_line_bytes: int = 8192) -> AgiConnection:
    """A connection past its environment block."""
    conn = AgiConnection(max_line_bytes=max_line_bytes)
    conn.receive_data(ENV)
    assert isinstance(conn.next_event(), EnvironmentReceived)
    return conn


def exchange(conn: AgiConnection, command: str, wire: bytes) -> list[Event]:
    conn.send_command(command)
    conn.receive_data(wire)
    return drain(conn)


# --------------------------------------------------------------------------- environment
def test_env_block_parsed_with_args_params_and_unknown_callerid() -> None:
    conn = AgiConnection()
    conn.receive_data(ENV[:50])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(ENV[50:])
    [event] = drain(conn)
    assert isinstance(event, EnvironmentReceived)
    env = event.env
    assert env.script == "bank"
    assert env.params == {"lang": "zh"}
    assert env.args == ("retail", "two words")
    assert env.channel == "PJSIP/sipp-00000001"
    assert env.calleridname == ""  # "unknown" means none
    assert conn.state is AgiState.IDLE and conn.env == env


def test_env_every_standard_key_byte_by_byte() -> None:
    sent = build_env("menu/main", query="lang=zh&x=1&x=2", args=["a", ""], caller="")
    conn = AgiConnection()
    events: list[Event] = []
    for byte in env_block(sent):
        conn.receive_data(bytes([byte]))
        events += drain(conn)
    [event] = events
    assert isinstance(event, EnvironmentReceived)
    env = event.env
    for key, value in sent.items():
        if key.startswith("agi_arg_"):
            continue
        expected = "" if value == "unknown" else value
        assert getattr(env, key.removeprefix("agi_")) == expected, key
    assert env.script == "menu/main"
    assert env.params == {"lang": "zh", "x": "2"}
    assert env.args == ("a", "")
    assert env.extra == {}


ODD_ENVS = [
    ENV,
    ENV.replace(b"agi_callerid: 5551234", b"agi_callerid:  5551234 "),  # two spaces kept one
    ENV.replace(b"agi_arg_2: two words", b"agi_arg_2: a\nagi_arg_2: b"),  # the last one wins
    ENV.replace(b"agi_calleridname: unknown", b"agi_calleridname: Jos\xe9"),
    ENV.replace(b"agi_network: yes", b"agi_network:\nagi_future_key: 42"),
]


@pytest.mark.parametrize("wire", ODD_ENVS)
def test_env_in_one_piece_reads_as_line_by_line(
    wire: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_byte = AgiConnection()
    for byte in wire:
        by_byte.receive_data(bytes([byte]))
        by_byte.next_event()
    assert by_byte.env is not None

    def no_line_by_line(self: AgiConnection, line: str) -> None:
        raise AssertionError("a whole, well-formed block is read at once")

    monkeypatch.setattr(AgiConnection, "_header_line", no_line_by_line)
    whole = AgiConnection()
    whole.receive_data(wire + b"200 result=0\n")  # what follows the block stays unread
    event = whole.next_event()
    assert isinstance(event, EnvironmentReceived)
    assert event.env == by_byte.env
    whole.send_command("ANSWER")
    assert drain(whole) == [parse_reply_line("200 result=0")]


def test_env_script_from_request_when_network_script_missing() -> None:
    env = AgiEnvironment.from_headers(
        {"agi_request": "agi://10.0.0.1/survey/?q=1&empty=", "agi_uniqueid": "1.2"}
    )
    assert env.script == "survey"
    assert env.params == {"q": "1", "empty": ""}


def test_env_crlf_missing_space_and_unknown_keys() -> None:
    conn = AgiConnection()
    conn.receive_data(b"agi_network: yes\r\nagi_accountcode:\r\nagi_future_key: 42\r\n\r\n")
    [event] = drain(conn)
    assert isinstance(event, EnvironmentReceived)
    assert event.env.accountcode == ""
    assert event.env.network == "yes"
    assert event.env.extra == {"agi_future_key": "42"}


def test_to_call_info() -> None:
    env = AgiEnvironment.from_headers(
        {
            "agi_uniqueid": "1718000000.9",
            "agi_callerid": "5551234",
            "agi_calleridname": "Li Wei",
            "agi_dnid": "unknown",
            "agi_extension": "100",
            "agi_channel": "PJSIP/x-1",
            "agi_language": "zh",
            "agi_network_script": "bank?branch=north",
            "agi_arg_2": "second",
            "agi_arg_1": "first",
        }
    )
    info = env.to_call_info()
    assert info.uniqueid == "1718000000.9"
    assert (info.caller_id, info.caller_name) == ("5551234", "Li Wei")
    assert info.dnis == "100"  # dnid unknown -> the dialled extension
    assert info.channel == "PJSIP/x-1" and info.language == "zh"
    assert info.args == ("first", "second")
    assert info.params == {"branch": "north"}
    assert AgiEnvironment().to_call_info().language == "en"


# --------------------------------------------------------------------------- replies
@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos"),
    [
        ("200 result=0", 200, "0", None, None),
        ("200 result=0 endpos=1234", 200, "0", None, 1234),
        ("200 result=55 endpos=8640", 200, "55", None, 8640),
        ("200 result=-1 endpos=0", 200, "-1", None, 0),
        ("200 result=-1", 200, "-1", None, None),
        # around the plain "result endpos" shortcut: the same as the general parse
        ("200 result=-0 endpos=-5", 200, "-0", None, -5),
        ("200 result=5 endpos=x", 200, "5", None, None),
        ("200 result=1 endpos=12 extra", 200, "1", None, 12),
        ("200 result=\u0663 endpos=1", 200, "\u0663", None, 1),  # a non-ASCII digit
        ("200 result=1 (hello world)", 200, "1", "hello world", None),
        ("200 result=1 (a (b) c)", 200, "1", "a (b) c", None),
        ("200 result=1 ()", 200, "1", "", None),
        ("200 result= (timeout)", 200, "", "timeout", None),
        ("200 result=35 (dtmf) endpos=16000", 200, "35", "dtmf", 16000),
        ("200 result=1 (digit) digit=5 endpos=800", 200, "1", "digit", 800),
        (
            "200 result=1 (speech) endpos=0 results=1 score0=900 text0=lost card",
            200, "1", "speech", 0,
        ),
        ("200 result=-1 Gosub label not found", 200, "-1", None, None),
        ("510 Invalid or unknown command", 510, "", "Invalid or unknown command", None),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            511, "", "Command Not Permitted on a dead channel or intercept routine", None,
        ),
        ("503 result=-2 Memory allocation failure", 503, "-2",
         "result=-2 Memory allocation failure", None),
    ],
)  # fmt: skip
def test_reply_forms(
    line: str, code: int, result: str, data: str | None, endpos: int | None
) -> None:
    [event] = exchange(ready(), "NOOP", line.encode() + b"\n")  # in one piece
    assert event == Reply(code, result, data, endpos, line)
    conn = ready()  # byte by byte: the line-by-line path reads the same
    conn.send_command("NOOP")
    events: list[Event] = []
    for byte in line.encode() + b"\r\n":
        conn.receive_data(bytes([byte]))
        events += drain(conn)
    assert events == [event]


def test_a_200_reply_in_one_piece_is_read_without_splitting_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = ready()

    def no_line_by_line(self: AgiConnection, line: str) -> None:
        raise AssertionError("a whole 200 reply is read at once")

    monkeypatch.setattr(AgiConnection, "_handle_line", no_line_by_line)
    assert exchange(conn, "NOOP", b"200 result=0\r\n") == [parse_reply_line("200 result=0")]
    assert conn.state is AgiState.IDLE
    conn.send_command("NOOP")
    conn.receive_data(b"200 foo\n")  # not a reply: the connection stays broken
    with pytest.raises(ProtocolError):
        conn.next_event()
    assert conn.state is AgiState.CLOSED
    with pytest.raises(ProtocolError):
        conn.next_event()


def test_result_int() -> None:
    assert parse_reply_line("200 result=-1").result_int() == -1
    with pytest.raises(ProtocolError):
        parse_reply_line("200 result= (timeout)").result_int()


def test_hangup_before_reply_then_reply_still_delivered() -> None:
    conn = ready()
    events = exchange(conn, 'STREAM FILE x ""', b"HANGUP\n511 Command Not Permitted\n")
    assert events == [HangupReceived(), Reply(511, "", "Command Not Permitted", None,
                                              "511 Command Not Permitted")]  # fmt: skip
    assert conn.hangup_received and conn.state is AgiState.IDLE


def test_hangup_while_idle_and_after_a_reply_in_the_same_chunk() -> None:
    conn = ready()
    events = exchange(conn, 'STREAM FILE x ""', b"200 result=-1 endpos=0\nHANGUP\n")
    assert [type(e) for e in events] == [Reply, HangupReceived]
    conn.receive_data(b"HANGUP\n")  # a second one while idle is still just a HANGUP
    assert drain(conn) == [HangupReceived()]


def test_reply_split_across_chunks() -> None:
    conn = ready()
    conn.send_command("GET VARIABLE X")
    for chunk in (b"200 res", b"ult=1 (val", b"ue)", b"\n"):
        assert conn.next_event() is NEED_DATA
        conn.receive_data(chunk)
    assert drain(conn) == [Reply(200, "1", "value", None, "200 result=1 (value)")]


def test_520_multi_line_usage() -> None:
    wire = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: WAIT FOR DIGIT <timeout>\n"
        b" Waits up to <timeout> milliseconds.\n"
        b"520 End of proper usage.\n"
    )
    [reply] = exchange(ready(), "WAIT FOR DIGIT", wire)
    assert isinstance(reply, Reply) and reply.code == 520
    assert reply.data == " Usage: WAIT FOR DIGIT <timeout>\n Waits up to <timeout> milliseconds."
    assert reply.raw == wire.decode().rstrip("\n")


def test_520_terminator_glued_to_last_usage_line() -> None:
    wire = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Returns the digits received.520 End of proper usage.\n"
    )
    conn = ready()
    [reply] = exchange(conn, "GET DATA", wire)
    assert isinstance(reply, Reply)
    assert (reply.code, reply.data) == (520, "Returns the digits received.")
    assert conn.state is AgiState.IDLE


def test_520_single_line_and_interim_100() -> None:
    conn = ready()
    line = "520 Invalid command syntax.  Proper usage not available."
    [reply] = exchange(conn, "GET DATA", line.encode() + b"\n")
    assert reply == Reply(520, "", line[4:], None, line)
    wire = b"100 result=0 Trying...\n200 result=0 Gosub complete\n"
    [reply] = exchange(conn, "GOSUB sub s 1", wire)
    assert isinstance(reply, Reply) and reply.raw == "200 result=0 Gosub complete"


# --------------------------------------------------------------------------- bad input
def test_line_too_long_without_newline() -> None:
    conn = ready(max_line_bytes=100)
    conn.send_command("GET VARIABLE X")
    conn.receive_data(b"200 result=1 (" + b"x" * 100)
    with pytest.raises(ProtocolError, match="longer than 100"):
        conn.next_event()
    with pytest.raises(ProtocolError):  # the error is sticky
        conn.next_event()
    assert conn.state is AgiState.CLOSED


def test_line_too_long_with_newline_and_just_under_the_limit() -> None:
    conn = ready(max_line_bytes=100)
    ok = b"200 result=1 (" + b"x" * (100 - 15) + b")"
    assert len(ok) == 100
    [reply] = exchange(conn, "GET VARIABLE X", ok + b"\n")
    assert isinstance(reply, Reply) and reply.data == "x" * 85
    conn.send_command("GET VARIABLE X")
    conn.receive_data(b"200 result=1 (" + b"x" * 100 + b")\n")
    with pytest.raises(ProtocolError):
        conn.next_event()


def test_env_line_too_long() -> None:
    conn = AgiConnection(max_line_bytes=64)
    conn.receive_data(b"agi_channel: " + b"x" * 100)
    with pytest.raises(ProtocolError):
        conn.next_event()


# --------------------------------------------------------------------------- caller bytes
# An old PBX hands Asterisk a display name in Latin-1 or GBK; Asterisk passes the bytes on.
LATIN1_NAME = "José".encode("latin-1")  # b"Jos\xe9"
GBK_NAME = "张三".encode("gbk")  # b"\xd5\xc5\xc8\xfd"


@pytest.mark.parametrize("name", [LATIN1_NAME, GBK_NAME, b"caf\xc3"])  # last: cut-off UTF-8
def test_env_value_that_is_not_utf8_keeps_its_bytes(name: bytes) -> None:
    conn = AgiConnection()
    conn.receive_data(ENV.replace(b"agi_calleridname: unknown", b"agi_calleridname: " + name))
    [event] = drain(conn)
    assert isinstance(event, EnvironmentReceived)
    assert event.env.calleridname.encode("utf-8", "surrogateescape") == name
    info = event.env.to_call_info()
    assert info.caller_name == event.env.calleridname and info.caller_id == "5551234"
    assert conn.state is AgiState.IDLE  # the call goes on: commands can be sent


def test_reply_data_that_is_not_utf8_keeps_its_bytes() -> None:
    conn = ready()
    wire = b"200 result=1 (" + LATIN1_NAME + b")\n"
    [reply] = exchange(conn, "GET VARIABLE CALLERID(name)", wire)
    assert isinstance(reply, Reply) and reply.result == "1"
    assert reply.data is not None and reply.data.encode("utf-8", "surrogateescape") == LATIN1_NAME


def test_a_value_read_from_asterisk_goes_back_as_the_same_bytes() -> None:
    conn = ready()
    name = LATIN1_NAME.decode("utf-8", "surrogateescape")
    wire = conn.send_command(format_command("SET VARIABLE", "GREETED", name))
    assert wire == b"SET VARIABLE GREETED " + LATIN1_NAME + b"\n"


def test_uniqueid_is_readable_text_for_logs_and_keys() -> None:
    conn = AgiConnection()
    conn.receive_data(ENV.replace(b"1718000000.1", b"1718000000.\xff"))
    [event] = drain(conn)
    assert isinstance(event, EnvironmentReceived)
    assert event.env.to_call_info().uniqueid == "1718000000.\\xff"


def test_readable_shows_bytes_that_were_not_utf8_as_escapes() -> None:
    assert readable("José 张") == "José 张"  # real text is left alone
    assert readable(LATIN1_NAME.decode("utf-8", "surrogateescape")) == "Jos\\xe9"
    assert readable(GBK_NAME.decode("utf-8", "surrogateescape")) == "\\xd5\\xc5\\xc8\\xfd"
    assert readable("\ud800") == "\\ud800"  # a lone surrogate from elsewhere (JSON)
    # Inside JSON text the backslash itself is escaped, so the JSON stays valid.
    assert readable('{"n": "Jos\udce9"}', in_json=True) == '{"n": "Jos\\\\xe9"}'


GARBAGE_HEADERS = [
    b"\xff\xfe\xfd\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"agi_network yes\n",
    b"\n",  # empty environment
    b"agi_: x\n",  # a key needs a name after agi_
    b"agi_caller id: x\n",
    b"agi_caller-id: x\n",
    b"agi_\xc3\xa9t\xc3\xa9: x\n",  # ASCII names only
    b"xagi_network: yes\n",
]


@pytest.mark.parametrize("wire", GARBAGE_HEADERS)
def test_garbage_header(wire: bytes) -> None:
    conn = AgiConnection()
    conn.receive_data(wire)
    with pytest.raises(ProtocolError):
        drain(conn)


@pytest.mark.parametrize("line", [w for w in GARBAGE_HEADERS if w.strip()])
def test_garbage_line_in_a_complete_header_block(line: bytes) -> None:
    conn = AgiConnection()  # a complete block is read at once, unless a line is wrong
    conn.receive_data(b"agi_network: yes\n" + line + b"agi_channel: PJSIP/x\n\n")
    with pytest.raises(ProtocolError):
        drain(conn)


@pytest.mark.parametrize(
    "wire", [b"hello\n", b"200result=0\n", b"20 result=0\n", b"200 foo\n", b"\xff\n"]
)
def test_garbage_reply(wire: bytes) -> None:
    conn = ready()
    conn.send_command("ANSWER")
    conn.receive_data(wire)
    with pytest.raises(ProtocolError):
        drain(conn)


def test_reply_while_idle_is_an_error() -> None:
    conn = ready()
    conn.receive_data(b"200 result=0\n")
    with pytest.raises(ProtocolError, match="no command is pending"):
        conn.next_event()


def test_eof_before_and_after_header() -> None:
    conn = AgiConnection()
    conn.receive_data(b"agi_network: yes\nagi_chan")
    conn.receive_data(b"")
    assert drain(conn) == [ConnectionClosed()]
    assert conn.next_event() == ConnectionClosed()  # stays closed, never NEED_DATA
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")
    conn = ready()
    conn.send_command("ANSWER")
    conn.receive_data(b"")
    assert drain(conn) == [ConnectionClosed()]
    with pytest.raises(LocalProtocolError):
        conn.send_command("ANSWER")


def test_send_command_rules() -> None:
    with pytest.raises(LocalProtocolError, match="before the AGI environment"):
        AgiConnection().send_command("ANSWER")
    conn = ready()
    assert conn.send_command("ANSWER") == b"ANSWER\n"
    with pytest.raises(LocalProtocolError, match="already waiting"):
        conn.send_command("ANSWER")
    conn.receive_data(b"200 result=0\n")
    drain(conn)
    for bad in ("ANSWER\nHANGUP", "ANSWER\r", "VERBOSE x\x00"):
        with pytest.raises(ValueError):
            conn.send_command(bad)
    with pytest.raises(ValueError, match="longer than"):
        conn.send_command("VERBOSE " + "x" * 2100)
    assert conn.state is AgiState.IDLE  # refused commands leave no trace


# --------------------------------------------------------------------------- commands
@pytest.mark.parametrize(
    ("arg", "wire"),
    [
        ("hello-world", "hello-world"),
        ("", '""'),
        (42, "42"),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\there", '"tab\there"'),
        ("PJSIP/100,30,tT", "PJSIP/100,30,tT"),
    ],
)
def test_quote_arg(arg: str | int, wire: str) -> None:
    assert quote_arg(arg) == wire


@pytest.mark.parametrize("bad", ["a\nHANGUP", "a\rb", "a\x00b", "\n"])
def test_injection_guard(bad: str) -> None:
    with pytest.raises(ValueError):
        quote_arg(bad)
    with pytest.raises(ValueError):
        format_command("SET VARIABLE", "X", bad)
    with pytest.raises(ValueError):
        commands.stream_file(bad)


def test_quoting_round_trips_through_asterisk_parse_args() -> None:
    rng = random.Random(20240601)
    alphabet = 'ab 1\\"\t,|()$#*é'
    for _ in range(500):
        args = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in "abc"]
        line = format_command("EXEC", *args)
        assert parse_args(line) == ["EXEC", *args], line


def test_command_name_validated() -> None:
    for bad in ("", "ANSWER\n", "STREAM  FILE", "EXEC;rm"):
        with pytest.raises(ValueError):
            format_command(bad)


def test_command_helpers() -> None:
    assert commands.answer() == "ANSWER"
    assert commands.stream_file("ivr/welcome") == 'STREAM FILE ivr/welcome ""'
    assert commands.stream_file("ivr/menu", "123", 800) == "STREAM FILE ivr/menu 123 800"
    assert commands.wait_for_digit(5000) == "WAIT FOR DIGIT 5000"
    assert commands.say_digits("0042", "#") == "SAY DIGITS 0042 #"
    assert commands.say_number(-17) == 'SAY NUMBER -17 ""'
    assert commands.say_date(1718000000, "*#") == "SAY DATE 1718000000 *#"
    assert commands.get_variable("CALLERID(num)") == "GET VARIABLE CALLERID(num)"
    assert commands.get_full_variable("${EXTEN}") == "GET FULL VARIABLE ${EXTEN}"
    assert commands.get_full_variable("${X}", "PJSIP/a-1") == "GET FULL VARIABLE ${X} PJSIP/a-1"
    assert commands.set_variable("GREETING", "good day") == 'SET VARIABLE GREETING "good day"'
    assert commands.exec_application("Queue", "support,c") == "EXEC Queue support,c"
    assert commands.exec_application("Playback", "a&b c") == 'EXEC Playback "a&b c"'
    assert commands.exec_application("Answer") == "EXEC Answer"
    assert commands.hangup() == "HANGUP"
    assert commands.hangup("PJSIP/a-1") == "HANGUP PJSIP/a-1"
    assert commands.verbose("call started", 3) == 'VERBOSE "call started" 3'
    assert commands.noop() == "NOOP"


@pytest.mark.parametrize("module", [replies, environment, commands])
def test_docstring_wire_samples(module: object) -> None:
    failures, tried = doctest.testmod(module)  # type: ignore[arg-type]
    assert tried > 0 and failures == 0


# --------------------------------------------------------------------------- transcripts
def load_transcript(path: Path) -> list[tuple[str, str]]:
    """``[("recv" | "send", line), ...]`` from a ``<<``/``>>`` transcript file."""
    steps: list[tuple[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        tag, _, text = line.partition(" ")
        if tag not in ("<<", ">>"):
            raise ValueError(f"{path.name}:{n}: line must start with '<<' or '>>'")
        steps.append(("recv" if tag == "<<" else "send", text))
    return steps


def replay(path: Path) -> tuple[list[str], list[Event]]:
    """Drive an AgiConnection through a transcript; return sent commands and events."""
    conn = AgiConnection()
    sent: list[str] = []
    events: list[Event] = []
    for direction, text in load_transcript(path):
        if direction == "send":
            events += drain(conn)
            assert conn.send_command(text) == text.encode() + b"\n"
            sent.append(text)
        else:
            conn.receive_data(text.encode() + b"\n")
    events += drain(conn)
    conn.receive_data(b"")
    events += drain(conn)
    return sent, events


def test_fixture_files_exist() -> None:
    names = sorted(p.name for p in FIXTURES.glob("*.txt"))
    assert "synthetic_bank_call.txt" in names and "synthetic_errors.txt" in names


def test_transcript_bank_call() -> None:
    sent, events = replay(FIXTURES / "synthetic_bank_call.txt")
    env = events[0]
    assert isinstance(env, EnvironmentReceived)
    assert env.env.script == "bank"
    assert env.env.params == {"lang": "zh", "branch": "north"}
    assert env.env.args == ("retail", "VIP customer")
    assert env.env.calleridname == "" and env.env.accountcode == ""
    # The commands in the transcript are exactly what the helpers build.
    assert sent == [
        commands.answer(),
        commands.stream_file("ivr/welcome"),
        commands.stream_file("ivr/menu", "123"),
        commands.wait_for_digit(5000),
        commands.get_variable("ACCOUNT"),
        commands.get_variable("CALLERID(name)"),
        commands.set_variable("IVR_PATH", "main menu>balance"),
        commands.exec_application("Queue", "support,c"),
        commands.stream_file("ivr/goodbye"),
        commands.noop(),
        commands.hangup(),
    ]
    summary = [
        (e.code, e.result, e.data, e.endpos) if isinstance(e, Reply) else type(e).__name__
        for e in events[1:]
    ]
    assert summary == [
        (200, "0", None, None),
        (200, "0", None, 28160),
        (200, "50", None, 5120),  # "2" pressed during the menu
        (200, "55", None, None),  # "7"
        (200, "0", None, None),  # unset
        (200, "1", "Li (VIP) Wei", None),
        (200, "1", None, None),
        (200, "0", None, None),
        (200, "-1", None, 3200),
        "HangupReceived",
        (200, "0", None, None),
        (511, "", "Command Not Permitted on a dead channel or intercept routine", None),
        "ConnectionClosed",
    ]


def test_transcript_errors() -> None:
    _, events = replay(FIXTURES / "synthetic_errors.txt")
    env = events[0]
    assert isinstance(env, EnvironmentReceived)
    assert (env.env.callerid, env.env.dnid, env.env.extension) == ("", "", "s")
    assert env.env.to_call_info().dnis == "s"
    replies = [e for e in events if isinstance(e, Reply)]
    assert [r.code for r in replies] == [510, 520, 520, 200, 200, 200, 511]
    assert replies[1].data is not None and replies[1].data.startswith(" Usage: WAIT FOR DIGIT")
    assert replies[1].data.count("\n") == 3
    assert replies[2].data == "Invalid command syntax.  Proper usage not available."
    assert (replies[3].result, replies[3].data) == ("", "timeout")
    assert replies[4].result == "0123"  # GET DATA digits keep their leading zero
    assert replies[5].raw == "200 result=0 Gosub complete"
    assert [type(e).__name__ for e in events[-3:]] == [
        "HangupReceived", "Reply", "ConnectionClosed",
    ]  # fmt: skip
