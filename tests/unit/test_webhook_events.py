"""Webhook settings, bodies and signatures (checked with the stock ``standardwebhooks``
package), and the screen-pop's values."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from support.flowkit import flow, run

from ivr.app.webhooks import body, signed_headers
from ivr.call.events import EVENTS, Event, call_ended
from ivr.call.record import CallRecord, InputEvent
from ivr.config import Secret, WebhookSettings, load_settings
from ivr.errors import ConfigError
from ivr.runtime.screenpop import reason, safe_value
from ivr.store.webhooks import OutboxRow

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    "url", ["https://crm.example.com/hooks", "http://127.0.0.1:9000/h", "http://[::1]/h"]
)
def test_https_or_loopback_urls_are_taken(url: str) -> None:
    assert WebhookSettings(url=url).url == url


@pytest.mark.parametrize("url", ["http://crm.example.com/hooks", "ftp://127.0.0.1/", "crm"])
def test_other_urls_are_refused_saying_why(url: str) -> None:
    with pytest.raises(ConfigError, match=r"https:// .*loopback"):
        WebhookSettings(url=url)


def test_the_secret_comes_from_the_environment_and_must_be_a_whsec() -> None:
    env = {"IVR_WEBHOOKS_URL": "https://crm.example.com/h", "IVR_WEBHOOKS_SECRET": SECRET}
    settings = load_settings(env=env)
    assert settings.webhooks.signing_key() == bytes(range(32))
    assert "whsec" not in repr(settings)  # never shown
    for bad in ("", "whsec_short", "whsec_!!!!", base64.b64encode(bytes(32)).decode()):
        with pytest.raises(ConfigError, match="openssl rand -base64 32"):
            load_settings(env={**env, "IVR_WEBHOOKS_SECRET": bad})
    assert load_settings(env={}).webhooks.url == ""  # off, no secret needed


def test_the_secret_is_refused_in_the_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"webhooks:\n  url: https://x.example/h\n  secret: {SECRET}\n")
    with pytest.raises(ConfigError, match="IVR_WEBHOOKS_SECRET"):
        load_settings(path, env={})


def test_unknown_events_are_refused() -> None:
    with pytest.raises(ConfigError, match="events must be among"):
        WebhookSettings(events=("call.started",))
    assert WebhookSettings().events == EVENTS


def test_a_body_verifies_with_the_stock_library() -> None:
    now = time.time()
    text = body(Event("call.ended", "c1", {"call_id": "c1", "flow": "银行"}), now)
    row = OutboxRow(1, "call.ended", "c1", text, now, "pending", 1, now, "", None)
    headers = signed_headers(Webhook(SECRET), row, now)
    data = Webhook(SECRET).verify(text.encode(), headers)
    assert data["type"] == "call.ended" and data["data"]["flow"] == "银行"
    assert headers["webhook-id"] == data["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(text.replace("c1", "c2").encode(), headers)
    old = signed_headers(Webhook(SECRET), row, now - 3600)  # a replay an hour later
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(text.encode(), old)


def test_call_ended_masks_the_caller_and_keeps_the_masked_variables() -> None:
    record = CallRecord("c1", "bank", "v1", caller="8613800138000", variables={"account": "***"})
    data = call_ended(record).data
    assert data["caller"] == "***8000" and data["variables"] == {"account": "***"}
    assert "inputs" not in data
    json.dumps(data)


def test_call_ended_says_when_the_caller_reached_each_node() -> None:
    record = CallRecord("c1", "bank", "v1", path=["main", "desk"], path_at=[0, 4250])
    data = call_ended(record).data
    assert data["path"] == ["main", "desk"] and data["path_at"] == [0, 4250]


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("1700000000.12", "1700000000.12"),
        ("main:0", "main:0"),
        ("贷款", "贷款"),
        ("a,b)c${X}", "a_b_c__X_"),
        ("x" * 100, "x" * 64),
        ("line\nbreak", "line_break"),
    ],
)
def test_channel_values_keep_only_safe_characters(value: str, safe: str) -> None:
    assert safe_value(value) == safe


MENU_TO_QUEUE = """
    start: main
    sensitive: [pin]
    nodes:
      main:
        menu:
          prompt: "Press 1 for loans, 0 for an agent."
          options:
            "1": {goto: desk, words: ["loans", "loan"]}
            "0": {goto: desk, words: ["agent"]}
          otherwise: main
      desk:
        queue: {name: default, when_unavailable: hangup, when_timeout: hangup}
"""


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


async def test_the_queue_sets_the_inherited_variables_and_offers_the_call() -> None:
    sink = Sink()
    _, channel = await run(flow(MENU_TO_QUEUE), "0", caller="8613800138000", events=sink)
    assert channel.variables["__IVR_CALL_ID"] == "t-1"
    assert channel.variables["__IVR_REASON"] == "main:0"
    assert channel.variables["__IVR_LANGUAGE"] == "en"
    assert channel.variables["__IVR_FLOW"] == "test"
    [offered] = sink.events
    assert (offered.kind, offered.call_id) == ("agent.offered", "t-1")
    assert offered.data["queue"] == "default" and offered.data["caller"] == "***8000"
    assert offered.data["path"] == ["main", "desk"]


@pytest.mark.parametrize(
    ("inputs", "variables", "expected"),
    [
        ([InputEvent("main", "dtmf", "0", 1.0)], {}, "main:0"),
        ([InputEvent("main", "speech", "Loans", 1.0)], {}, "main:1"),
        ([InputEvent("main", "speech", "my pin is 1234", 1.0)], {}, ""),  # never caller text
        ([InputEvent("main", "dtmf", "0", 1.0)], {"reason": "card_lost"}, "card_lost"),
        ([InputEvent("main", "dtmf", "0", 1.0)], {"reason": "***"}, "main:0"),
        ([], {}, ""),
    ],
)
def test_the_reason_is_the_flows_or_the_last_menu_choice(
    inputs: list[InputEvent], variables: dict[str, str], expected: str
) -> None:
    record = CallRecord("c1", "f", "v", inputs=inputs)
    assert reason(flow(MENU_TO_QUEUE), record, variables) == expected


def test_secret_repr_hides_it() -> None:
    assert SECRET not in repr(WebhookSettings(secret=Secret(SECRET.encode())))
