"""Left messages: the ``messages`` table on both engines, the server's keeper (the WAV
measured, a transcript where a recogniser has the language, the row, ``message.recorded``)
and the console's API (newest first, callers masked, the audio from the row only, with the
token even when reads are open; marked heard)."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support.store_console import StoreConsole

from ivr.admin.api import make_admin_app
from ivr.app.messages import MessageKeeper
from ivr.call.events import Event
from ivr.call.messages import LeftMessage
from ivr.config import AdminSettings, Secret
from ivr.flow.registry import FlowRegistry
from ivr.store.messages import MessageStore
from ivr.store.records import RecordStore

TOKEN = "messages-token-0123456789"
NOW = 1_800_000_000.0


def write_wav(path: Path, seconds: float, amplitude: int = 3000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(8000 * seconds)
    samples = b"".join(
        int(amplitude if (i // 20) % 2 else -amplitude).to_bytes(2, "little", signed=True)
        for i in range(n)
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples)
    return path


async def add(table: MessageStore, call_id: str, at: float, file: str = "") -> int:
    return await table.add(
        call_id=call_id,
        flow="bank",
        node="leave_message",
        caller="+8613812345678",
        file=file or f"messages/{call_id}-leave_message-1.wav",
        duration_s=4.5,
        language="zh",
        transcript="",
        now=at,
    )


async def test_messages_newest_first_and_marked_heard_once(store: RecordStore) -> None:
    table = MessageStore(store)
    first = await add(table, "c1", NOW)
    second = await add(table, "c2", NOW + 60)
    assert [r.id for r in await table.rows()] == [second, first]
    assert await table.unheard() == 2
    assert await table.heard(first, NOW + 120)
    assert await table.heard(first, NOW + 999)  # found; the first time counts
    row = await table.get(first)
    assert row is not None and row.heard_at == NOW + 120
    assert (row.call_id, row.caller, row.duration_s, row.language) == (
        "c1",
        "+8613812345678",
        4.5,
        "zh",
    )
    assert [r.id for r in await table.rows(unheard=True)] == [second]
    assert not await table.heard(99999, NOW)
    assert await table.get(99999) is None


@dataclass
class Events:
    got: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.got.append(event)


class FakeEngine:
    """A recogniser whose transcript says which file it heard (the real ones are tested in
    tests/integration/test_speech_*.py)."""

    name = "fake"


async def test_the_keeper_measures_stores_and_announces(
    store: RecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[tuple[str, Path]] = []

    def fake_transcribe(engine: Any, path: Path) -> str:
        heard.append((engine.name, Path(path)))
        return "please call me back"

    monkeypatch.setattr("ivr.app.messages.transcribe", fake_transcribe)
    events = Events()
    keeper = MessageKeeper(
        MessageStore(store), tmp_path / "rec", lambda: NOW, events, lambda: {"en": FakeEngine()}
    )
    keeper.start()
    path = Path(keeper.path("c1-leave-1"))
    assert path.is_absolute() and path.parent == (tmp_path / "rec" / "messages").resolve()
    write_wav(path.with_suffix(".wav"), 3.25)
    keeper.keep(LeftMessage("c1", "bank", "leave", "+8613812345678", "c1-leave-1", "en"))
    # a message in a language no recogniser has: stored without a transcript
    write_wav(Path(keeper.path("c2-leave-1") + ".wav"), 1.0)
    keeper.keep(LeftMessage("c2", "bank", "leave", "555", "c2-leave-1", "zh", 1.0))
    # no file at all (the caller hung up before any audio): nothing stored
    keeper.keep(LeftMessage("c3", "bank", "leave", "555", "c3-leave-1", "en"))
    write_wav(Path(keeper.path("c4-leave-1") + ".wav"), 1.0)
    keeper.discard("c4-leave-1")
    await keeper.close()
    rows = {r.call_id: r for r in await MessageStore(store).rows()}
    assert set(rows) == {"c1", "c2"}
    assert rows["c1"].duration_s == 3.25 and rows["c1"].transcript == "please call me back"
    assert rows["c1"].file == "messages/c1-leave-1.wav" and rows["c1"].created_at == NOW
    assert rows["c2"].transcript == "" and rows["c2"].language == "zh"
    assert heard == [("fake", path.with_suffix(".wav"))]
    assert not Path(keeper.path("c4-leave-1") + ".wav").exists()
    [c1] = [e for e in events.got if e.call_id == "c1"]
    assert c1.kind == "message.recorded"
    assert c1.data["caller"] != "+8613812345678" and c1.data["caller"].endswith("5678")
    assert (c1.data["file"], c1.data["duration_s"], c1.data["transcript"]) == (
        "messages/c1-leave-1.wav",
        3.25,
        "please call me back",
    )


# --- the API ------------------------------------------------------------------------------


@pytest.fixture
async def api(
    store: RecordStore, tmp_path: Path
) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, int]]]:
    recordings = tmp_path / "recordings"
    write_wav(recordings / "messages/c1-leave-1.wav", 2.0)
    write_wav(tmp_path / "secret.wav", 1.0)
    write_wav(recordings / "calls/c9.wav", 1.0)
    table = MessageStore(store)
    ids = {
        "c1": await add(table, "c1", NOW, "messages/c1-leave-1.wav"),
        "up": await add(table, "up", NOW + 1, "messages/../../secret.wav"),
        "absolute": await add(table, "absolute", NOW + 2, str(tmp_path / "secret.wav")),
        "call": await add(table, "call", NOW + 3, "calls/c9.wav"),
        "gone": await add(table, "gone", NOW + 4, "messages/gone.wav"),
    }
    flows = tmp_path / "flows"
    flows.mkdir()
    console = StoreConsole(FlowRegistry(flows), store, str(recordings))
    settings = AdminSettings(port=0, token=Secret(TOKEN.encode()), open_read=True)
    client = TestClient(TestServer(make_admin_app(console, settings)))
    await client.start_server()
    yield client, ids
    await client.close()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_list_is_newest_first_with_callers_masked(
    api: tuple[TestClient[Any, Any], dict[str, int]],
) -> None:
    client, _ = api
    reply = await client.get("/api/messages")
    assert reply.status == 200
    body = await reply.json()
    assert body["unheard"] == 5
    assert [m["call_id"] for m in body["messages"]] == ["gone", "call", "absolute", "up", "c1"]
    assert all(m["caller"] != "+8613812345678" for m in body["messages"])
    assert "8613812345678" not in await (await client.get("/api/messages")).text()


async def test_the_audio_is_the_rows_wav_with_the_token_only(
    api: tuple[TestClient[Any, Any], dict[str, int]],
) -> None:
    client, ids = api
    url = f"/api/messages/{ids['c1']}/audio"
    assert (await client.get(url)).status == 401  # open reads do not open voices
    reply = await client.get(url, headers=AUTH)
    assert reply.status == 200 and reply.headers["Content-Type"] == "audio/wav"
    data = await reply.read()
    assert data[:4] == b"RIFF" and len(data) == 44 + 2 * 16000
    for name in ("up", "absolute", "call", "gone"):
        assert (await client.get(f"/api/messages/{ids[name]}/audio", headers=AUTH)).status == 404
    for bad in ("99999", "x", "-1", "..%2Fsecret"):
        assert (await client.get(f"/api/messages/{bad}/audio", headers=AUTH)).status == 404


async def test_marking_heard_needs_the_token(
    api: tuple[TestClient[Any, Any], dict[str, int]],
) -> None:
    client, ids = api
    url = f"/api/messages/{ids['c1']}/heard"
    assert (await client.post(url)).status == 401
    reply = await client.post(url, headers=AUTH)
    assert reply.status == 200 and await reply.json() == {"heard": ids["c1"]}
    body = await (await client.get("/api/messages?unheard=1")).json()
    assert body["unheard"] == 4 and ids["c1"] not in [m["id"] for m in body["messages"]]
    assert (await client.post("/api/messages/99999/heard", headers=AUTH)).status == 404


def test_pocketsphinx_transcribes_a_message_free_form(tmp_path: Path) -> None:
    """No grammar: whatever was said comes out as words (espeak through the telephone band
    is hard for its US English model, so only that there are words), silence as none."""
    from support.speech_audio import have_espeak, silence, speech
    from support.speech_audio import write_wav as write_pcm

    from ivr.speech.engines import make_engine
    from ivr.speech.transcribe import transcribe

    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    engine = make_engine("pocketsphinx")
    said, quiet = tmp_path / "said.wav", tmp_path / "quiet.wav"
    write_pcm(str(said), speech("please call me back tomorrow morning"))
    write_pcm(str(quiet), silence(2.0))
    assert transcribe(engine, said).split()
    assert transcribe(engine, quiet) == ""


def test_a_message_reads_the_same_whatever_was_transcribed_before(tmp_path: Path) -> None:
    """One decoder serves every transcript: what it heard before must not change the next
    reading (its front end's noise estimate did: "... our lord" became "... my rogue or")."""
    from support.speech_audio import have_espeak, speech
    from support.speech_audio import write_wav as write_pcm

    from ivr.speech.pocketsphinx import PocketsphinxEngine
    from ivr.speech.transcribe import transcribe

    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    engine = PocketsphinxEngine()
    first, other = tmp_path / "first.wav", tmp_path / "other.wav"
    write_pcm(str(first), speech("please call me back tomorrow morning"))
    write_pcm(str(other), speech("I lost my card yesterday and need a new one"))
    before = transcribe(engine, first)
    transcribe(engine, other)
    assert transcribe(engine, first) == before
