"""The interpreter on an in-memory channel: every node kind and every error path."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.flowkit import MONDAY_10AM_UTC, flow, run
from support.instants import next_new_year

from ivr.asterisk.agi.channel import AgiChannel
from ivr.asterisk.agi.replies import Reply, parse_reply_line
from ivr.call.channel import CallInfo
from ivr.call.record import MASK
from ivr.engines.http import extract
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import StubHttp

MENU = """
start: menu
nodes:
  menu:
    menu:
      prompt: "Press 1 for A, 2 for B, 12 for C."
      short_prompt: "1 A, 2 B."
      options:
        "1": a
        "2": {goto: b, set: {choice: bee}}
        "12": c
        "*": repeat
      timeout_s: 3
      inter_digit_timeout_s: 1
      no_input: {prompt: "I heard nothing.", max: 1}
      no_match: {prompt: "Not a choice.", max: 2}
      otherwise: fallback
  a: {play: "A.", next: hangup, served: true}
  b: {play: "B.", next: hangup}
  c: {play: "C.", next: hangup}
  fallback: {play: "Let me help.", next: hangup}
"""


def heard(channel: Any) -> list[str]:
    return [line.removeprefix("play: ") for line in channel.transcript if line.startswith("play")]


async def test_menu_digit_reaches_its_branch() -> None:
    record, channel = await run(flow(MENU), "2")
    assert record.path == ["menu", "b"]
    assert record.outcome == "failed_in_ivr"  # b is not marked served
    assert record.variables["choice"] == "bee"
    assert heard(channel)[-1] == "B."
    assert channel.hung_up  # the flow ended the call: the server hangs up, not the dialplan


async def test_a_served_node_makes_the_flows_end_self_service() -> None:
    record, channel = await run(flow(MENU), "1,wait")
    assert (record.path, record.outcome) == (["menu", "a"], "self_service")
    assert channel.hung_up


async def test_a_failed_menu_the_flow_ends_is_failed_in_ivr_not_self_service() -> None:
    record, _ = await run(flow(MENU), "wait,wait")
    assert (record.path, record.outcome) == (["menu", "fallback"], "failed_in_ivr")


async def test_path_at_is_when_each_node_was_entered_on_the_calls_clock() -> None:
    # menu at 0 s; silence (the 3 s timeout), then "2" (0.5 s on the simulated clock): b at 3.5
    record, _ = await run(flow(MENU), "wait,2")
    assert record.path == ["menu", "b"]
    assert record.path_at == [0.0, 3.5]
    record, _ = await run(flow(MENU), "9,wait,7,2")  # 0.5 + 3 + 0.5 + 0.5
    assert record.path_at == [0.0, 4.5] and len(record.path_at) == len(record.path)


async def test_multi_digit_option_waits_for_the_second_digit() -> None:
    record, _ = await run(flow(MENU), "12")
    assert record.path == ["menu", "c"]
    # "1" alone is also an option: after the inter-digit timeout it is chosen
    record, _ = await run(flow(MENU), "1,wait")
    assert record.path == ["menu", "a"]


async def test_no_input_and_no_match_have_separate_counters_and_prompts() -> None:
    record, channel = await run(flow(MENU), "9,wait,7,2")
    kinds = [i.kind for i in record.inputs]
    assert kinds == ["no_match", "no_input", "no_match", "dtmf"]
    assert record.path[-1] == "b"
    said = heard(channel)
    assert said[0] == "Press 1 for A, 2 for B, 12 for C."
    # retries use the retry prompt then the short prompt
    assert said[1:3] == ["Not a choice.", "1 A, 2 B."]
    assert said[3:5] == ["I heard nothing.", "1 A, 2 B."]


async def test_too_many_no_inputs_go_to_otherwise() -> None:
    record, _ = await run(flow(MENU), "wait,wait")
    assert record.path == ["menu", "fallback"]
    assert [i.kind for i in record.inputs] == ["no_input", "no_input"]


async def test_too_many_no_matches_go_to_otherwise() -> None:
    record, _ = await run(flow(MENU), "9,9,9")
    assert record.path == ["menu", "fallback"]


async def test_repeat_plays_the_long_prompt_again() -> None:
    _, channel = await run(flow(MENU), "*,2")
    said = heard(channel)
    assert said[:2] == ["Press 1 for A, 2 for B, 12 for C."] * 2


async def test_back_returns_to_the_previous_menu() -> None:
    f = flow("""
        start: top
        nodes:
          top:
            menu:
              prompt: "Top. 1 for sub."
              options: {"1": sub, "2": done}
              otherwise: done
          sub:
            menu:
              prompt: "Sub. 9 to go back."
              options: {"9": back}
              otherwise: done
          done: {play: "Done.", next: hangup}
    """)
    record, _ = await run(f, "1,9,2")
    assert record.path == ["top", "sub", "top", "done"]


async def test_caller_hanging_up_mid_menu_is_abandoned_at_that_node() -> None:
    record, channel = await run(flow(MENU), "")
    assert record.outcome == "abandoned"
    assert record.end_node == "menu"
    assert record.ended_at is not None
    assert channel.hung_up


async def test_served_node_makes_a_later_hangup_self_service() -> None:
    f = flow("""
        start: info
        nodes:
          info: {play: "Your info.", served: true, next: more}
          more:
            menu: {prompt: "1 again", options: {"1": info}, otherwise: hangup}
    """)
    record, _ = await run(f, "hangup")
    assert record.outcome == "self_service"
    assert record.end_node == "more"


COLLECT = """
start: ask
variables: {account: ""}
nodes:
  ask:
    collect:
      prompt: "Enter your account number."
      into: account
      digits: {min: 4, max: 4, end: "#"}
      pattern: "[1-9][0-9]*"
      sensitive: true
      confirm: "You entered {account:digits}. Press 1 if right, 2 to retry."
      no_match: {prompt: "That is not a valid number.", max: 1}
      no_input: {max: 0}
      otherwise: agent
    next: thanks
  thanks: {play: "Thanks.", next: hangup}
  agent: {play: "Agent.", next: hangup}
"""


async def test_collect_with_confirm_masks_sensitive_input() -> None:
    record, channel = await run(flow(COLLECT), "1234#,1")
    assert record.path == ["ask", "thanks"]
    assert [(i.kind, i.value) for i in record.inputs] == [("confirm", "1"), ("dtmf", MASK)]
    assert record.variables["account"] == MASK
    # read back to the caller with the English clips
    assert heard(channel)[1:6] == ["You entered", "one", "two", "three", "four"]


async def test_collect_confirm_2_re_enters() -> None:
    record, _ = await run(flow(COLLECT), "1234#,2,5678,wait,1")
    assert record.path == ["ask", "thanks"]
    assert [i.kind for i in record.inputs] == ["confirm", "confirm", "dtmf"]


async def test_collect_rejects_pattern_and_length_then_otherwise() -> None:
    record, channel = await run(flow(COLLECT), "0123,12#")
    assert [i.kind for i in record.inputs] == ["no_match", "no_match"]
    assert all(i.value == MASK for i in record.inputs)
    assert record.path == ["ask", "agent"]
    assert "play: That is not a valid number." in channel.transcript


async def test_collect_too_many_digits_is_no_match() -> None:
    record, _ = await run(flow(COLLECT), "12345")
    assert record.inputs[0].kind == "no_match"


async def test_set_branch_and_goto() -> None:
    f = flow("""
        start: init
        variables: {tier: ""}
        nodes:
          init: {set: {tier: gold, greeting: "hi {tier}"}, next: route}
          route:
            branch:
              - {if: 'matches(caller_id, "86.*")', goto: china}
              - {if: 'tier == "gold" and hour >= 9', goto: vip}
            else: plain
          china: {goto: plain}
          vip: {play: "VIP.", next: hangup}
          plain: {play: "Plain.", next: hangup}
    """)
    record, _ = await run(f, "")
    assert record.path == ["init", "route", "vip"]
    assert record.variables["greeting"] == "hi gold"
    record, _ = await run(f, "", caller="8613800000000")
    assert record.path == ["init", "route", "china", "plain"]


async def test_hours_open_closed_holiday() -> None:
    new_year = next_new_year("Asia/Shanghai")
    f = flow(
        """
        start: h
        timezone: Asia/Shanghai
        nodes:
          h:
            hours:
              open: {mon-fri: "09:00-18:00"}
              holidays: ["NEW_YEAR"]
              when_open: open
              when_closed: closed
              when_holiday: holiday
          open: {play: "Open.", next: hangup}
          closed: {play: "Closed.", next: hangup}
          holiday: {play: "Holiday.", next: hangup}
    """.replace("NEW_YEAR", new_year.isoformat())
    )
    # 10:00 UTC is 18:00 in Shanghai: closed (end is exclusive)
    record, _ = await run(f, at=MONDAY_10AM_UTC)
    assert record.path[-1] == "closed"
    record, _ = await run(f, at=MONDAY_10AM_UTC - 3 * 3600)
    assert record.path[-1] == "open"
    at = datetime.combine(new_year, time(10), ZoneInfo("Asia/Shanghai")).timestamp()
    record, _ = await run(f, at=at)
    assert record.path[-1] == "holiday"


HTTP = """
start: look
variables: {account: "12/34"}
nodes:
  look:
    http:
      get: "/accounts/{account}/balance"
      save: {balance: data.available}
      on_error: failed
    next: tell
  tell: {play: "Balance {balance:currency}.", next: hangup, served: true}
  failed: {play: "Lookup failed.", next: hangup}
"""


async def test_http_saves_fields_and_escapes_the_path() -> None:
    stub = StubHttp(
        {"GET /accounts/12%2F34/balance": {"data": {"available": 1234.5}}}, emit=lambda _: None
    )
    record, channel = await run(flow(HTTP), http=stub, extract=extract)
    assert record.path == ["look", "tell"]
    assert record.variables["balance"] == "1234.5"
    words = "one thousand two hundred and thirty four dollars and fifty cents"
    assert heard(channel) == ["Balance", *words.split(" ")]  # the English clips


async def test_http_failure_goes_to_on_error() -> None:
    stub = StubHttp({}, emit=lambda _: None)
    record, _ = await run(flow(HTTP), http=stub, extract=extract)
    assert record.path == ["look", "failed"]


async def test_http_missing_field_goes_to_on_error() -> None:
    stub = StubHttp({"GET /accounts/12%2F34/balance": {"data": {}}}, emit=lambda _: None)
    record, _ = await run(flow(HTTP), http=stub, extract=extract)
    assert record.path == ["look", "failed"]


async def test_http_without_client_goes_to_on_error() -> None:
    record, _ = await run(flow(HTTP))
    assert record.path == ["look", "failed"]


TRANSFER = """
start: agent
nodes:
  agent:
    transfer: {to: "PJSIP/desk", timeout_s: 20, on_fail: busy}
  busy: {play: "Busy.", next: hangup}
"""


async def test_transfer_answered_is_transferred() -> None:
    record, channel = await run(flow(TRANSFER), "answer")
    assert record.outcome == "transferred"
    assert record.transfer_target == "PJSIP/desk"
    assert "dial PJSIP/desk,20 -> ANSWER" in channel.transcript


async def test_transfer_busy_goes_to_on_fail() -> None:
    record, _ = await run(flow(TRANSFER), "busy")
    assert record.path == ["agent", "busy"]
    assert record.outcome == "failed_in_ivr"  # nobody answered, nothing served


async def test_hangup_node_outcome() -> None:
    f = flow("start: bye\nnodes:\n  bye: {hangup: {outcome: abandoned}}\n")
    record, _ = await run(f)
    assert record.outcome == "abandoned"


HANGUP_AFTER = """
start: info
nodes:
  info: {play: "Your info.", served: SERVED, next: bye}
  bye: {hangup: HOW}
"""


@pytest.mark.parametrize(
    ("served", "how", "outcome"),
    [
        ("true", "true", "self_service"),  # no outcome written: served decides
        ("false", "true", "failed_in_ivr"),
        ("false", "{}", "failed_in_ivr"),
        ("false", "{outcome: self_service}", "self_service"),  # the author's word wins
        ("true", "{outcome: failed_in_ivr}", "failed_in_ivr"),
        ("true", "{outcome: abandoned}", "abandoned"),
    ],
)
async def test_a_hangup_nodes_outcome_is_served_unless_written(
    served: str, how: str, outcome: str
) -> None:
    f = flow(HANGUP_AFTER.replace("SERVED", served).replace("HOW", how))
    record, _ = await run(f)
    assert (record.outcome, record.end_node) == (outcome, "bye")


async def test_sub_flow_call_and_return() -> None:
    sub = flow(
        """
        start: s1
        nodes:
          s1: {play: "In the sub-flow.", next: return}
    """,
        name="cards",
    )
    main = flow("""
        start: go
        nodes:
          go: {call: cards, next: after}
          after: {play: "Back.", next: hangup}
    """)
    record, _ = await run(main, flows={"test": main, "cards": sub})
    assert record.path == ["go", "cards:s1", "after"]
    assert record.outcome == "failed_in_ivr" and len(record.path_at) == 3
    served = flow("start: s1\nnodes:\n  s1: {play: Hi, served: true, next: return}\n", "cards")
    record, _ = await run(main, flows={"test": main, "cards": served})
    assert record.outcome == "self_service"  # served in the sub-flow counts


async def test_missing_sub_flow_is_an_error_record() -> None:
    main = flow("start: go\nnodes:\n  go: {call: nowhere, next: hangup}\n")
    record, channel = await run(main)
    assert record.outcome == "error"
    assert "nowhere" in (record.error or "")
    assert not channel.hung_up  # left to the dialplan's fallback


async def test_runtime_expression_error_is_an_error_record() -> None:
    f = flow("""
        start: b
        variables: {x: "abc"}
        nodes:
          b:
            branch: [{if: 'x > 5 and x + 1 > 2', goto: y}]
            else: y
          y: {play: "Y.", next: hangup}
    """)
    record, _ = await run(f)
    assert record.outcome == "error"
    assert record.end_node == "b"


async def test_language_switch_changes_prompts() -> None:
    f = flow("""
        start: pick
        languages: [en, zh]
        nodes:
          pick:
            menu:
              prompt: ["Press 1 for English.", {text: "中文请按2。", language: zh}]
              options: {"1": hi, "2": {goto: hi, set: {language: zh}}}
              otherwise: hi
          hi: {play: {en: "Hello.", zh: "你好。"}, next: hangup}
    """)
    record, channel = await run(f, "2")
    assert heard(channel)[-1] == "你好。"
    assert record.language == "zh"
    record, channel = await run(f, "1")
    assert heard(channel)[-1] == "Hello."


async def test_error_in_http_service_other_than_lookup_is_recorded() -> None:
    class Broken:
        async def request(self, *a: Any, **k: Any) -> object:
            raise RuntimeError("bug in a service")

    record, _ = await run(flow(HTTP), http=Broken(), extract=extract)
    assert record.outcome == "error"
    assert "bug in a service" in (record.error or "")


@pytest.mark.parametrize("tokens", ["", "1", "12", "9,9", "wait,wait,wait"])
async def test_every_path_leaves_a_complete_record(tokens: str) -> None:
    record, _ = await run(flow(MENU), tokens)
    assert record.outcome is not None
    assert record.ended_at is not None and record.ended_at >= record.started_at
    assert record.path and record.end_node == record.path[-1]


async def test_checkpoint_is_called_before_each_waiting_node() -> None:
    seen: list[list[str]] = []

    def checkpoint(record: Any, point: Any) -> None:
        seen.append(list(record.path))

    await run(flow(MENU), "9,2", checkpoint=checkpoint)
    assert seen == [["menu"]]


SPEECH = """
start: main
nodes:
  main:
    menu:
      prompt: "Say billing, lost card, or agent. Or press 1, 2 or 0."
      input: [dtmf, speech]
      options:
        "1": {goto: billing, words: [billing, bill]}
        "2": {goto: lost, words: [lost card, stolen card]}
        "0": {goto: agent, words: [agent, a person]}
        "12": secret
      no_match: {prompt: "Sorry, I did not get that.", max: 1}
      otherwise: agent
  billing: {play: "Billing.", next: hangup}
  lost: {play: "Lost card.", next: hangup}
  agent: {play: "Agent.", next: hangup}
  secret: {play: "Secret.", next: hangup}
"""


async def test_speech_menu_chooses_by_words() -> None:
    record, _ = await run(flow(SPEECH), "say:I lost my card,say:um my card is a stolen card")
    # "I lost my card" is not a phrase: no match, then the retry matches "stolen card"
    assert [(i.kind, i.value) for i in record.inputs] == [
        ("no_match", "I lost my card"),
        ("speech", "um my card is a stolen card"),
    ]
    assert record.path == ["main", "lost"]


async def test_speech_menu_still_takes_keys_including_multi_digit() -> None:
    record, _ = await run(flow(SPEECH), "12")
    assert record.path == ["main", "secret"]
    record, _ = await run(flow(SPEECH), "0")
    assert record.path == ["main", "agent"]


async def test_speech_menu_silence_is_no_input_and_too_many_no_matches_leave() -> None:
    record, _ = await run(flow(SPEECH), "wait,say:weather,say:news")
    assert [i.kind for i in record.inputs] == ["no_input", "no_match", "no_match"]
    assert record.path == ["main", "agent"]


# ---- caller and back-office values never crash a call ------------------------------------------


class IdleAsterisk:
    """An AGI CommandSender answering like Asterisk when nobody presses a key."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    async def __call__(self, command: str, timeout_s: float | None) -> Reply:
        self.commands.append(command)
        endpos = " endpos=8000" if command.startswith("STREAM FILE") else ""
        return parse_reply_line(f"200 result=0{endpos}")


async def run_on_agi(f: Any, *, caller: str = "5551234") -> tuple[Any, list[str]]:
    """Run ``f`` on the real AgiChannel, which checks arguments the way Asterisk needs them."""
    asterisk = IdleAsterisk()
    channel = AgiChannel(CallInfo(uniqueid="t-agi", caller_id=caller), asterisk)
    record = await CallRun(f, channel, Services(flows={f.name: f})).run()
    return record, asterisk.commands


# French has no say-as rules: its values are said by Asterisk (SAY DIGITS, SAY NUMBER, ...)
NO_RULES = "language: fr\n"


async def test_caller_id_with_star_is_spoken_digit_by_digit() -> None:
    f = flow(
        NO_RULES + 'start: n\nnodes:\n  n: {play: ["Vous appelez du", {digits: "{caller_id}"}], '
        "served: true, next: hangup}\n"
    )
    record, commands = await run_on_agi(f, caller="*67#555")
    assert record.outcome == "self_service", record.error
    spoken = [c for c in commands if c.startswith(("SAY", "STREAM FILE digits/"))]
    assert spoken == [
        'STREAM FILE digits/star ""',
        'SAY DIGITS 67 ""',
        'STREAM FILE digits/pound ""',
        'SAY DIGITS 555 ""',
    ]


@pytest.mark.parametrize(
    "value", ["Infinity", "-inf", "nan", "1e400", "1e308", "1000000000", "12abc"]
)
@pytest.mark.parametrize("kind", ["currency", "number"])
async def test_amounts_asterisk_cannot_say_are_skipped(kind: str, value: str) -> None:
    f = flow(f"""
        language: fr
        start: n
        variables: {{amount: "{value}"}}
        nodes:
          n: {{play: ["Vous devez", {{{kind}: "{{amount}}"}}, "Au revoir."], served: true,
              next: hangup}}
    """)
    record, commands = await run_on_agi(f)
    assert record.outcome == "self_service", record.error
    assert not [c for c in commands if c.startswith("SAY")]
    assert sum(c.startswith("STREAM FILE") for c in commands) == 2  # the text around it


@pytest.mark.parametrize(
    ("amount", "said"),
    [
        ("999999999.5", ['SAY NUMBER 999999999 ""', 'SAY DIGITS 50 ""']),
        ("999999999.996", []),  # rounds up to a billion
    ],
)
async def test_largest_amount_asterisk_says_is_still_said(amount: str, said: list[str]) -> None:
    f = flow(
        NO_RULES + f'start: n\nvariables: {{amount: "{amount}"}}\nnodes:\n'
        '  n: {play: [{currency: "{amount}"}], next: hangup}\n'
    )
    _, commands = await run_on_agi(f)
    assert [c for c in commands if c.startswith("SAY")] == said


async def test_http_path_with_an_empty_caller_value_goes_to_on_error() -> None:
    stub = StubHttp({}, emit=lambda _: None)
    f = flow(HTTP.replace('variables: {account: "12/34"}', 'variables: {account: ""}'))
    record, _ = await run(f, http=stub, extract=extract)
    assert record.outcome == "failed_in_ivr", record.error  # the lookup failed: not served
    assert record.path == ["look", "failed"]
