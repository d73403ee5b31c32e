"""AgiServer over real TCP on 127.0.0.1 with the scripted fake Asterisk."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from support.fake_asterisk import (
    DEAD_511,
    FakeCallState,
    FakeCommand,
    build_env,
    env_block,
    run_fake_call,
)
from support.sound_files import write_wav

from ivr.asterisk import tcp
from ivr.asterisk.agi.channel import AgiChannel
from ivr.asterisk.agi.environment import AgiEnvironment
from ivr.asterisk.agi.server import AgiServer
from ivr.call.channel import Prompt
from ivr.errors import AgiCommandTimeout, CallHangup

HOST = "127.0.0.1"
Handler = Callable[[AgiEnvironment, AgiChannel], Awaitable[None]]
Start = Callable[..., Awaitable[tuple[AgiServer, "Recorder"]]]


class Recorder:
    """A handler wrapper that remembers what happened to each call."""

    def __init__(self, body: Handler) -> None:
        self.body = body
        self.envs: list[AgiEnvironment] = []
        self.errors: list[BaseException] = []
        self.finished = 0

    async def __call__(self, env: AgiEnvironment, channel: AgiChannel) -> None:
        self.envs.append(env)
        try:
            await self.body(env, channel)
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self.finished += 1


async def bank_flow(env: AgiEnvironment, channel: AgiChannel) -> None:
    await channel.answer()
    pressed = await channel.play([Prompt("file", "welcome"), Prompt("file", "menu")], "12")
    if not pressed:
        pressed = await channel.wait_for_digit(5)
    second = await channel.wait_for_digit(5)
    await channel.set_variable("CHOICE", pressed + second)
    await channel.play([Prompt("sound", f"digits/{pressed or 'none'}")])
    if await channel.get_variable("VIP") is None:
        await channel.exec("Queue", f"{env.params.get('q', 'support')},c")
    await channel.hangup()


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """``server, recorder = await start(body, **server_kwargs)``; closed after the test."""
    servers: list[AgiServer] = []

    async def _start(body: Handler, **kwargs: object) -> tuple[AgiServer, Recorder]:
        recorder = Recorder(body)
        server = AgiServer(recorder, host=HOST, port=0, **kwargs)  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return server, recorder

    yield _start
    for server in servers:
        await server.close(grace_s=1.0)


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def read_until_eof(reader: asyncio.StreamReader, timeout_s: float = 2.0) -> bytes:
    async with asyncio.timeout(timeout_s):
        return await reader.read()


# --------------------------------------------------------------------------- calls
async def test_full_call(start: Start) -> None:
    server, rec = await start(bank_flow, sounds_prefix="ivr/")
    assert server.port > 0
    result = await run_fake_call(
        HOST, server.port, script="bank", query="q=vip-line", digits=["1", "2"], caller="5551234"
    )
    assert result.closed_by_server and not result.timed_out
    assert result.commands == [
        "ANSWER",
        "STREAM FILE ivr/welcome 12",
        "STREAM FILE ivr/menu 12",
        "WAIT FOR DIGIT 5000",
        "WAIT FOR DIGIT 5000",
        "SET VARIABLE CHOICE 12",
        'STREAM FILE digits/1 ""',
        "GET VARIABLE VIP",
        "EXEC Queue vip-line,c",
        "HANGUP",
    ]
    assert result.variables == {"CHOICE": "12"}
    assert result.hung_up
    [env] = rec.envs
    assert env.script == "bank" and env.callerid == "5551234"
    assert rec.errors == [] and rec.finished == 1
    await wait_until(lambda: server.active_calls == 0)


async def test_barge_in_digit_and_args(start: Start) -> None:
    seen: list[object] = []

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        seen.append(channel.info.args)
        seen.append(await channel.play([Prompt("file", "menu")], "12"))

    server, _ = await start(flow)
    result = await run_fake_call(HOST, server.port, digits=["2"], barge_in=True, args=["a b", "c"])
    assert seen == [("a b", "c"), "2"]
    assert result.digits_left == [] and result.closed_by_server


async def test_server_closes_socket_after_handler_returns(start: Start) -> None:
    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.answer()  # and return without HANGUP: the server must still close

    server, rec = await start(flow)
    t0 = time.monotonic()
    result = await run_fake_call(HOST, server.port, timeout_s=3)
    assert result.commands == ["ANSWER"]  # nothing more is sent after the handler
    assert result.closed_by_server and not result.timed_out
    assert time.monotonic() - t0 < 1.0
    assert rec.finished == 1


async def test_server_closes_after_asterisk_hangup_line(start: Start) -> None:
    # Asterisk sends HANGUP after the HANGUP command and keeps the socket open.
    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.hangup()

    server, _ = await start(flow)
    result = await run_fake_call(HOST, server.port, timeout_s=3)
    assert result.replies == ["200 result=1", "HANGUP"]
    assert result.closed_by_server and not result.timed_out


async def test_hangup_mid_command_surfaces_as_callhangup(start: Start) -> None:
    server, rec = await start(bank_flow)
    result = await run_fake_call(HOST, server.port, digits=["1"], hangup_at=1)
    assert result.commands == ["ANSWER", "STREAM FILE welcome 12", "NOOP"]
    assert result.replies[1:3] == ["200 result=-1 endpos=480", "HANGUP"]
    [error] = rec.errors
    assert isinstance(error, CallHangup)
    assert result.closed_by_server


async def test_hangup_line_between_command_and_reply(start: Start) -> None:
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str] | None:
        if cmd.name == "WAIT FOR DIGIT":
            state.dead = True
            return ["HANGUP", "200 result=0"]
        return None

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.answer()
        await channel.wait_for_digit(1)
        await channel.verbose("never sent")

    server, rec = await start(flow)
    result = await run_fake_call(HOST, server.port, rule=rule)
    assert result.commands == ["ANSWER", "WAIT FOR DIGIT 1000"]
    assert [type(e) for e in rec.errors] == [CallHangup]
    assert result.closed_by_server


async def test_511_is_callhangup(start: Start) -> None:
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str] | None:
        return [DEAD_511] if cmd.name == "STREAM FILE" else None

    server, rec = await start(bank_flow)
    result = await run_fake_call(HOST, server.port, rule=rule)
    assert result.commands == ["ANSWER", "STREAM FILE welcome 12"]
    assert [type(e) for e in rec.errors] == [CallHangup]


async def test_idle_hangup_line_seen_at_next_command(start: Start) -> None:
    # The caller hangs up while no command runs (the flow is busy elsewhere): HANGUP arrives
    # unasked, and the next command (not allowed on a dead channel) gets 511.
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str] | None:
        if cmd.name == "ANSWER":
            state.dead = True
            return ["200 result=0", "HANGUP"]
        return None

    server, rec = await start(bank_flow)
    result = await run_fake_call(HOST, server.port, rule=rule)
    assert result.names == ["ANSWER", "STREAM FILE"]
    assert result.replies == ["200 result=0", "HANGUP", DEAD_511]
    assert [type(e) for e in rec.errors] == [CallHangup]
    assert result.closed_by_server


async def test_command_timeout_ends_the_call(start: Start) -> None:
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str] | None:
        return [] if cmd.name == "ANSWER" else None  # a stuck Asterisk: never answers

    server, rec = await start(bank_flow, command_timeout_s=0.3)
    t0 = time.monotonic()
    result = await run_fake_call(HOST, server.port, rule=rule, timeout_s=5)
    elapsed = time.monotonic() - t0
    assert result.commands == ["ANSWER"]
    assert result.closed_by_server and not result.timed_out
    assert 0.25 < elapsed < 2.0
    [error] = rec.errors
    assert isinstance(error, AgiCommandTimeout) and "ANSWER" in str(error)


async def test_a_short_timeout_after_a_long_one_still_fires_on_time(start: Start) -> None:
    # WAIT FOR DIGIT 2000 is bounded by 2 s + the command timeout; the stuck GET VARIABLE
    # after it must give up after the command timeout alone.
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        if cmd.name == "WAIT FOR DIGIT":
            return [f"200 result={ord('5')}"]
        return [] if cmd.name == "GET VARIABLE" else None

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        assert await channel.wait_for_digit(2) == "5"
        await channel.get_variable("TIER")

    server, rec = await start(flow, command_timeout_s=0.3)
    t0 = time.monotonic()
    result = await run_fake_call(HOST, server.port, rule=rule, timeout_s=5)
    assert 0.25 < time.monotonic() - t0 < 1.5
    assert result.names == ["WAIT FOR DIGIT", "GET VARIABLE"] and result.closed_by_server
    [error] = rec.errors
    assert isinstance(error, AgiCommandTimeout) and "GET VARIABLE" in str(error)


async def test_a_long_prompt_plays_to_the_end(start: Start, tmp_path: Path) -> None:
    # The prompt lasts 0.8 s, longer than the 0.2 s command timeout: Asterisk answers when it
    # has played. A stuck GET VARIABLE afterwards still times out after 0.2 s.
    write_wav(tmp_path / "tts" / "disclaimer.wav", 0.8)

    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        if cmd.name in ("STREAM FILE", "EXEC"):
            return [0.7, "200 result=0 endpos=6400"]
        return [] if cmd.name == "GET VARIABLE" else None

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.play([Prompt("tts", "tts/disclaimer")])
        await channel.exec("Playback", "ivr/tts/disclaimer")
        await channel.get_variable("TIER")

    server, rec = await start(flow, command_timeout_s=0.2, prompts_dir=str(tmp_path))
    t0 = time.monotonic()
    result = await run_fake_call(HOST, server.port, rule=rule, timeout_s=5)
    assert 1.5 < time.monotonic() - t0 < 2.5
    assert result.names == ["STREAM FILE", "EXEC", "GET VARIABLE"] and result.closed_by_server
    [error] = rec.errors
    assert isinstance(error, AgiCommandTimeout) and "GET VARIABLE" in str(error)


async def test_a_prompt_that_overruns_its_length_times_out(start: Start, tmp_path: Path) -> None:
    write_wav(tmp_path / "short.wav", 0.1)

    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        return [] if cmd.name == "STREAM FILE" else None  # a stuck Asterisk

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.play([Prompt("file", "short")])

    server, rec = await start(flow, command_timeout_s=0.2, prompts_dir=str(tmp_path))
    t0 = time.monotonic()
    result = await run_fake_call(HOST, server.port, rule=rule, timeout_s=5)
    assert 0.25 < time.monotonic() - t0 < 1.0  # 0.1 s prompt + 0.2 s margin
    assert result.closed_by_server
    [error] = rec.errors
    assert isinstance(error, AgiCommandTimeout) and "STREAM FILE" in str(error)


async def test_exec_queue_has_no_deadline(start: Start) -> None:
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        return [0.6, "200 result=0"] if cmd.name == "EXEC" else None  # the caller waits

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.exec("Queue", "support,c")
        await channel.hangup()

    server, rec = await start(flow, command_timeout_s=0.2)
    result = await run_fake_call(HOST, server.port, rule=rule, timeout_s=5)
    assert rec.errors == [] and result.names == ["EXEC", "HANGUP"]


async def test_accepted_sockets_use_tcp_keepalive(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A half-open connection (the Asterisk box died mid-Queue) is noticed by TCP keepalive,
    # since Queue() has no deadline of its own.
    accepted: list[socket.socket] = []
    real = tcp.set_keepalive

    def spy(sock: socket.socket) -> None:
        accepted.append(sock)
        real(sock)

    monkeypatch.setattr(tcp, "set_keepalive", spy)
    options: list[tuple[int, ...]] = []

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        [sock] = accepted
        options.append(
            (
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            )
        )

    server, rec = await start(flow)
    await run_fake_call(HOST, server.port)
    [(on, idle, interval, count)] = options
    assert on == 1 and rec.errors == []
    assert idle + interval * count <= 180  # a dead peer is noticed within a few minutes
    assert idle <= 120 and count >= 3


async def test_hangup_line_bounds_an_unbounded_command(start: Start) -> None:
    # EXEC has no time bound (Queue() runs for minutes), but after HANGUP the reply must
    # come within the command timeout.
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        return [0.1, "HANGUP"] if cmd.name == "EXEC" else None

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.exec("Queue", "support")

    server, rec = await start(flow, command_timeout_s=0.3)
    t0 = time.monotonic()
    result = await run_fake_call(HOST, server.port, rule=rule, timeout_s=5)
    assert 0.3 < time.monotonic() - t0 < 1.5
    assert result.names == ["EXEC"] and result.closed_by_server
    [error] = rec.errors
    assert isinstance(error, AgiCommandTimeout) and "EXEC" in str(error)


async def test_cancelled_command_reply_is_dropped_not_misdelivered(start: Start) -> None:
    # panoramisk hands a stale reply to the next command; we must skip it.
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        # "7" is pressed after the flow stopped waiting: that reply must not reach GET VARIABLE.
        return [0.3, "200 result=55"] if cmd.name == "WAIT FOR DIGIT" else None

    got: list[str | None] = []

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(channel.wait_for_digit(5), 0.1)
        got.append(await channel.get_variable("TIER"))

    server, rec = await start(flow)
    result = await run_fake_call(HOST, server.port, rule=rule, variables={"TIER": "gold"})
    assert got == ["gold"] and rec.errors == []
    assert result.names == ["WAIT FOR DIGIT", "GET VARIABLE"]


async def test_header_timeout(start: Start) -> None:
    server, rec = await start(bank_flow, header_timeout_s=0.2)
    reader, writer = await asyncio.open_connection(HOST, server.port)
    writer.write(b"agi_network: yes\n")  # ... and then nothing
    assert await read_until_eof(reader) == b""
    writer.close()
    assert rec.envs == []
    await wait_until(lambda: server.active_calls == 0)


async def test_over_max_connections_the_dialplan_fallback_takes_the_call(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    # Over the cap the server reads nothing: it tells the dialplan (IVR_RESULT=busy, which
    # sends the caller to the fallback queue) and closes. An AGI() that only sees the socket
    # close reports AGISTATUS=SUCCESS, and the dialplan would hang up on the caller.
    release = asyncio.Event()

    async def hold(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.answer()
        await release.wait()

    rejected: list[int] = []
    server, rec = await start(hold, max_connections=2, on_reject=lambda: rejected.append(1))
    held = [asyncio.create_task(run_fake_call(HOST, server.port)) for _ in range(2)]
    await wait_until(lambda: len(rec.envs) == 2)
    with caplog.at_level(logging.WARNING, logger="ivr.asterisk.agi"):
        t0 = time.monotonic()
        over = [await run_fake_call(HOST, server.port, timeout_s=5) for _ in range(3)]
        assert time.monotonic() - t0 < 1.0
    for result in over:
        assert result.commands == ["SET VARIABLE IVR_RESULT busy"] and result.closed_by_server
        assert result.variables == {"IVR_RESULT": "busy"}
    assert len(rec.envs) == 2 and len(rejected) == 3 and server.active_calls == 2
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]  # rate-limited
    assert "max_connections" in warning.getMessage()
    release.set()
    await asyncio.gather(*held)
    result = await run_fake_call(HOST, server.port)  # room again
    assert result.names == ["ANSWER"] and len(rec.envs) == 3


async def test_a_bare_connect_and_close_is_logged_at_debug(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    # A port check (a health probe, a load balancer) is no news; a half-sent block is.
    server, rec = await start(bank_flow)
    with caplog.at_level(logging.DEBUG, logger="ivr.asterisk.agi"):
        for sent in (b"", b"agi_network: yes\n"):
            caplog.clear()
            _, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(sent)
            writer.close()
            await writer.wait_closed()
            await wait_until(
                lambda: any("closed the connection" in r.getMessage() for r in caplog.records)
            )
            [record] = [r for r in caplog.records if "closed the connection" in r.getMessage()]
            assert record.levelno == (logging.INFO if sent else logging.DEBUG)
    assert rec.envs == []


# --------------------------------------------------------------------------- bad clients
@pytest.mark.parametrize("sent", [b"", b"agi_network: yes\nagi_request: agi://x/ba"])
async def test_early_disconnect_ends_only_that_connection(start: Start, sent: bytes) -> None:
    server, rec = await start(bank_flow)
    _, writer = await asyncio.open_connection(HOST, server.port)
    writer.write(sent)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # No spinning on EOF: the connection's task ends by itself.
    await wait_until(lambda: server.active_calls == 0)
    assert rec.envs == []
    result = await run_fake_call(HOST, server.port, digits=["1", "2"])
    assert result.closed_by_server and result.names[-1] == "HANGUP"


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff\xfe\x00\x01garbage\n\n",
        b"agi_network: yes\n" + b"x" * 10000,
    ],
)
async def test_garbage_closes_only_that_connection(start: Start, garbage: bytes) -> None:
    server, rec = await start(bank_flow, max_line_bytes=4096)
    reader, writer = await asyncio.open_connection(HOST, server.port)
    writer.write(garbage)
    await writer.drain()
    assert await read_until_eof(reader) == b""  # closed, nothing sent back
    writer.close()
    assert rec.envs == []
    result = await run_fake_call(HOST, server.port, digits=["1", "2"])
    assert result.closed_by_server and len(result.commands) == 10


async def test_garbage_reply_mid_call(start: Start) -> None:
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str] | None:
        return ["this is not AGI"] if cmd.name == "STREAM FILE" else None

    server, rec = await start(bank_flow)
    result = await run_fake_call(HOST, server.port, rule=rule)
    assert result.commands == ["ANSWER", "STREAM FILE welcome 12"]
    assert result.closed_by_server
    assert len(rec.errors) == 1 and "not an AGI reply" in str(rec.errors[0])


async def test_handler_exception_is_logged_with_uniqueid(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.answer()
        raise RuntimeError("flow bug")

    server, _ = await start(broken)
    with caplog.at_level(logging.INFO, logger="ivr.asterisk.agi"):
        result = await run_fake_call(HOST, server.port, uniqueid="1718000000.77")
    assert result.closed_by_server
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None  # the uniqueid is a field: printed once by the format
    assert getattr(record, "uniqueid", None) == "1718000000.77"
    again = await run_fake_call(HOST, server.port)  # the server lives on
    assert again.commands == ["ANSWER"]


async def test_caller_bytes_that_are_not_utf8_run_the_call_and_log_escaped(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    # An old PBX's Latin-1 caller name: the call runs, and a value read from Asterisk goes
    # back to it as the same bytes.
    name = b"Jos\xe9".decode("utf-8", "surrogateescape")
    seen: list[str | None] = []

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.answer()
        seen.append(channel.info.caller_name)
        value = await channel.get_variable("CALLERID(name)")
        seen.append(value)
        await channel.set_variable("GREETED", value or "")
        await channel.hangup()

    server, rec = await start(flow)
    with caplog.at_level(logging.DEBUG, logger="ivr.asterisk.agi"):
        result = await run_fake_call(
            HOST, server.port, caller_name=name, variables={"CALLERID(name)": name}
        )
    assert rec.errors == [] and seen == [name, name]
    assert result.names == ["ANSWER", "GET VARIABLE", "SET VARIABLE", "HANGUP"]
    assert result.variables["GREETED"].encode("utf-8", "surrogateescape") == b"Jos\xe9"
    messages = [r.getMessage() for r in caplog.records]
    assert any("(Jos\\xe9)" in m for m in messages)  # the reply, shown escaped
    for m in messages:
        m.encode("utf-8")  # a UTF-8 log file can take every line


# --------------------------------------------------------------------------- scale, lifecycle
async def test_fifty_concurrent_calls(start: Start) -> None:
    answered = 0
    all_in = asyncio.Event()

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        nonlocal answered
        await channel.answer()
        answered += 1
        if answered == 50:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 5)  # every call is up at the same time
        digit = await channel.wait_for_digit(1)
        await channel.play([Prompt("sound", f"you-pressed-{digit}-{env.args[0]}")])
        await channel.hangup()

    server, rec = await start(flow)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while not all_in.is_set():
            peak = max(peak, server.active_calls)
            await asyncio.sleep(0.005)
        peak = max(peak, server.active_calls)

    watcher = asyncio.create_task(watch())
    calls = [
        run_fake_call(HOST, server.port, digits=[str(n % 10)], args=[str(n)]) for n in range(50)
    ]
    results = await asyncio.gather(*calls)
    await watcher
    assert peak == 50
    for n, result in enumerate(results):
        assert result.closed_by_server
        assert result.commands[2] == f'STREAM FILE you-pressed-{n % 10}-{n} ""'
    assert rec.errors == [] and rec.finished == 50
    await wait_until(lambda: server.active_calls == 0)


async def test_close_lets_calls_finish_then_cancels(start: Start) -> None:
    async def forever(env: AgiEnvironment, channel: AgiChannel) -> None:
        await channel.answer()
        await asyncio.sleep(3600)

    server, rec = await start(forever)
    call = asyncio.create_task(run_fake_call(HOST, server.port, timeout_s=5))
    await wait_until(lambda: rec.envs != [])
    port = server.port
    t0 = time.monotonic()
    await server.close(grace_s=0.2)
    assert 0.15 < time.monotonic() - t0 < 2.0
    result = await call
    assert result.closed_by_server and not result.timed_out
    assert [type(e) for e in rec.errors] == [asyncio.CancelledError]
    assert server.active_calls == 0
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, port)


async def test_context_manager_and_env_block_helper() -> None:
    got: list[str] = []

    async def flow(env: AgiEnvironment, channel: AgiChannel) -> None:
        got.append(env.script)

    async with AgiServer(flow, host=HOST, port=0) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(env_block(build_env("survey")))
        assert await read_until_eof(reader) == b""
        writer.close()
    assert got == ["survey"]
    assert server.sockets == ()
