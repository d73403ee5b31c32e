"""Flow loading and validation: every error names file, line, column, node and the fix."""

from __future__ import annotations

import json
import runpy
import textwrap
from pathlib import Path

import pytest

from ivr.errors import FlowErrors
from ivr.flow import model as m
from ivr.flow.library import load_library
from ivr.flow.loader import load_flow, parse_flow
from ivr.flow.queue_node import QueueNode
from ivr.flow.schema import flow_schema

ROOT = Path(__file__).resolve().parents[2]


def errors_of(text: str, **kw: object) -> list[str]:
    with pytest.raises(FlowErrors) as info:
        parse_flow(textwrap.dedent(text), file="f.yaml", name="f", **kw)  # type: ignore[arg-type]
    return [str(e) for e in info.value.errors]


def test_sample_flows_are_valid() -> None:
    lib = load_library([ROOT / "flows"], ROOT / "prompts")
    assert lib.errors == []
    assert {"main", "bank"} <= set(lib.flows)
    bank = lib.flows["bank"]
    assert bank.languages == ("en", "zh")
    assert bank.sensitive == {"account"}
    assert isinstance(bank.nodes["opening_hours"], m.HoursNode)


def test_yaml_1_1_surprises_are_plain_strings() -> None:
    f = parse_flow(
        textwrap.dedent("""
        start: m
        nodes:
          m:
            menu:
              prompt: "yes or no"
              options:
                1: {goto: m2, words: [yes, no, on]}
              otherwise: m2
          m2: {play: "ok", next: hangup}
    """),
        file="f.yaml",
        name="f",
    )
    menu = f.nodes["m"]
    assert isinstance(menu, m.MenuNode)
    assert menu.options["1"].words == ("yes", "no", "on")


def test_duplicate_digit_names_both_lines() -> None:
    errs = errors_of("""
        start: m
        nodes:
          m:
            menu:
              prompt: "x"
              options:
                "1": a
                1: a
              otherwise: a
          a: {play: "a", next: hangup}
    """)
    assert errs == ["f.yaml:9:9: duplicate key '1' (first defined on line 8); remove one of them"]


def test_unknown_kind_dangling_target_and_unknown_key() -> None:
    errs = errors_of("""
        start: a
        nodes:
          a: {play: "hi", next: b}
          b: {playy: "typo"}
          c: {play: "x", nxt: a}
    """)
    assert errs[0].startswith(
        "f.yaml:5:7: node 'b': unknown node kind 'playy'; did you mean 'play'? Use one of: play"
    )
    # the misspelt key explains the missing 'next': one error, with the fix
    assert (
        "f.yaml:6:18: node 'c': unknown key 'nxt'; did you mean 'next'? Allowed here: barge_in,"
        " description, next, play, served" in errs
    )
    assert not any("missing required key" in e for e in errs)


def test_dangling_target_suggests_a_name() -> None:
    errs = errors_of("""
        start: welcome
        nodes:
          welcome: {play: "hi", next: mian}
          main: {play: "x", next: hangup}
    """)
    # 'main' is unreachable only because of the typo: one error, not two
    assert errs == [
        "f.yaml:4:31: node 'welcome': goes to 'mian', which is not a node of this flow"
        " (1 node is unreachable because of this: main); did you mean 'main'?"
    ]


def test_loop_without_input_is_rejected() -> None:
    errs = errors_of("""
        start: a
        nodes:
          a: {play: "a", next: b}
          b: {goto: a}
    """)
    assert errs == [
        "f.yaml:4:3: node 'a': these nodes loop without ever waiting for the caller:"
        " a -> b -> a; put a menu or collect in the loop"
    ]


def test_loop_through_a_menu_is_fine() -> None:
    parse_flow(
        textwrap.dedent("""
        start: a
        nodes:
          a: {play: "a", next: m}
          m:
            menu: {prompt: "again?", options: {"1": a}, otherwise: hangup}
    """),
        file="f.yaml",
        name="f",
    )


def test_bad_pattern_bad_condition_bad_hours_undefined_variable() -> None:
    errs = errors_of("""
        start: c
        nodes:
          c:
            collect: {prompt: "x", into: acct, pattern: "[0-9", otherwise: hangup}
            next: b
          b:
            branch: [{if: "acct === 1", goto: h}]
            else: h
          h:
            hours: {open: {mon: "9-5"}, when_open: t, when_closed: t}
          t: {play: "You said {acount:digits}", next: hangup}
    """)
    joined = "\n".join(errs)
    assert "f.yaml:5:49: node 'c': bad pattern" in joined
    assert "node 'b': condition 'acct === 1'" in joined
    assert "f.yaml:11:25: node 'h': open.mon: '9' is not a time" in joined


# --- collect patterns: RE2, like matches() ------------------------------------------------

# `(\d+)+5` against 64 digits with no 5 is 2**63 ways to split the digits for a backtracking
# engine: minutes to forever on the event loop. RE2 is linear in the digits.
PATHOLOGICAL = r"""
    start: c
    nodes:
      c:
        collect:
          prompt: "Your number?"
          into: acct
          digits: {min: 1, max: 64}
          pattern: '(\d+)+5'
          no_match: {max: 0}
          otherwise: hangup
        next: hangup
"""


async def test_a_pathological_collect_pattern_on_64_digits_is_linear() -> None:
    from support.flowkit import flow, run

    f = flow(PATHOLOGICAL)
    record, _ = await run(f, "1" * 64 + "#")
    assert [i.kind for i in record.inputs] == ["no_match"]
    record, _ = await run(f, "1" * 63 + "5#")
    assert [i.kind for i in record.inputs] == ["dtmf"]


def collect_pattern(pattern: str) -> m.Matcher:
    f = parse_flow(
        "start: c\nnodes:\n  c:\n    collect: {prompt: x, into: acct, "
        f"pattern: '{pattern}', otherwise: hangup}}\n    next: hangup\n",
        file="f.yaml",
        name="f",
    )
    node = f.nodes["c"]
    assert isinstance(node, m.CollectNode) and node.pattern is not None
    return node.pattern


def test_a_collect_pattern_matches_the_whole_input_and_only_ascii_digits() -> None:
    assert collect_pattern("[0-9]{4}").fullmatch("1234") is not None
    assert collect_pattern("[0-9]{4}").fullmatch("12345") is None  # whole input, not a prefix
    assert collect_pattern("[0-9]{4}$").fullmatch("1234\n") is None  # no `$`-before-\n trap
    assert collect_pattern(r"\d+").fullmatch("1234\n") is None
    assert collect_pattern(r"\d{4}").fullmatch("١٢٣٤") is None  # Arabic-Indic digits: not \d


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        (r"(\d)\1", "backreferences (\\1) are not supported"),
        ("(?=1)[0-9]+", "lookahead (?=...) is not supported"),
    ],
    ids=["backreference", "lookahead"],
)
def test_a_collect_pattern_re2_cannot_run_names_file_line_and_node(pattern: str, hint: str) -> None:
    [error] = errors_of(f"""
        start: c
        nodes:
          c:
            collect: {{prompt: "x", into: acct, pattern: '{pattern}', otherwise: hangup}}
            next: hangup
    """)
    assert error.startswith(f"f.yaml:5:49: node 'c': bad pattern: {hint}")
    assert "RE2" in error


def test_undefined_variable_is_named() -> None:
    errs = errors_of("""
        start: t
        nodes:
          t: {play: "You said {acount:digits}", next: hangup}
    """)
    assert errs == [
        "f.yaml:4:13: node 't': variable 'acount' is never set in this flow; check "
        "the spelling, or declare it under 'variables:'"
    ]


def test_text_variables_need_a_spoken_format() -> None:
    errs = errors_of("""
        start: t
        variables: {name: "x"}
        nodes:
          t: {play: "Hello {name}", next: hangup}
    """)
    assert "say how to speak {name}" in errs[0]


def test_missing_prompt_file(tmp_path: Path) -> None:
    text = """
        start: t
        nodes:
          t: {play: {file: welcome}, next: hangup}
    """
    errs = errors_of(text, prompts_dir=tmp_path)
    assert "prompt file 'welcome' is not in" in errs[0]
    (tmp_path / "welcome.wav").write_bytes(b"RIFF")
    parse_flow(textwrap.dedent(text), file="f.yaml", name="f", prompts_dir=tmp_path)


def test_duplicate_words_across_options() -> None:
    errs = errors_of("""
        start: m
        nodes:
          m:
            menu:
              prompt: "x"
              options:
                "1": {goto: a, words: [billing]}
                "2": {goto: a, words: [Billing]}
              otherwise: a
          a: {play: "a", next: hangup}
    """)
    assert "the words 'Billing' already choose option '1'" in errs[0]


def test_queue_node_needs_its_branches_and_a_known_survey() -> None:
    errs = errors_of("""
        start: q
        nodes:
          q: {queue: {name: cards}}
    """)
    assert "missing required key 'when_unavailable'" in errs[0]
    errs = errors_of("""
        start: q
        nodes:
          q: {queue: {name: cards, when_unavailable: bye, when_timeout: bye}, survey: nope}
          bye: {hangup: true}
    """)
    assert "no survey named 'nope' in 'surveys:'" in errs[0] and ":4:" in errs[0]


def test_survey_section_is_checked() -> None:
    errs = errors_of("""
        start: s
        surveys:
          after:
            questions:
              - {id: happy, prompt: "Rate us", scale: "1-5"}
            satisfaction: unknown
        nodes:
          s: {survey: after}
    """)
    assert "'unknown' is not one of the questions (happy)" in errs[0]
    errs = errors_of("""
        start: s
        surveys:
          after:
            questions: [{id: happy, prompt: "Rate us"}]
            outbound: {dial: "PJSIP/555@trunk"}
        nodes:
          s: {survey: after}
    """)
    assert ":6:22:" in errs[0] and "PJSIP/555@trunk" in errs[0] and "number" in errs[0]


def test_queue_and_survey_load() -> None:
    flow = parse_flow(
        textwrap.dedent("""
        start: q
        surveys:
          after:
            questions:
              - {id: solved, prompt: "Solved? 1 yes 2 no", scale: yes-no}
              - {id: happy, prompt: "Rate us 1 to 5"}
            outbound: {dial: "PJSIP/{number}@trunk", hours: {mon-fri: "09:00-18:00"}}
        nodes:
          q:
            queue:
              name: cards
              timeout_s: 60
              callback: {prompt: "Press 1 for a callback", over_s: 30, then: booked,
                         dial: "Local/{number}@callbacks"}
              when_unavailable: bye
              when_timeout: bye
            survey: after
            next: bye
          booked: {play: "We will call you", next: bye}
          bye: {hangup: true}
    """),
        file="f.yaml",
        name="f",
    )
    q = flow.nodes["q"]
    assert isinstance(q, QueueNode) and q.queue == "cards" and q.survey == "after"
    assert q.callback is not None and q.callback.over_s == 30 and q.callback.then == "booked"
    survey = flow.surveys["after"]
    assert survey.satisfaction == "happy"  # the first 1-5 question by default
    assert survey.outbound is not None and survey.outbound.hours is not None
    assert len(flow.prompts()) == 4  # the callback offer, the play, two questions


def test_speech_menus_need_words_and_streamable_prompts() -> None:
    errs = errors_of("""
        start: m
        variables: {n: "1"}
        nodes:
          m:
            menu:
              prompt: ["You have {n:number} messages.", {sound: beep}]
              input: [speech]
              options: {"1": hangup}
              otherwise: hangup
    """)
    assert len(errs) == 2
    assert any("a speech menu needs words on its options" in e for e in errs)
    assert any("f.yaml:7:15: node 'm': a speech menu streams its prompts itself" in e for e in errs)
    parse_flow(
        textwrap.dedent("""
        start: m
        nodes:
          m:
            menu:
              prompt: "Say billing or agent."
              input: [dtmf, speech]
              options: {"1": {goto: hangup, words: [billing]}, "0": {goto: hangup, words: [agent]}}
              otherwise: hangup
    """),
        file="f.yaml",
        name="f",
    )


def test_transfer_never_takes_variables() -> None:
    errs = errors_of("""
        start: t
        nodes:
          t: {transfer: {to: "PJSIP/{digits}", on_fail: hangup}}
    """)
    assert "'PJSIP/{digits}' is not allowed" in errs[0]


def test_yaml_syntax_error_points_at_the_mistake() -> None:
    """PyYAML fails at the end of the file; the mistake is the '{' never closed."""
    errs = errors_of("start: a\nnodes:\n  a: {play: 'x', next: hangup\n")
    assert errs == ["f.yaml:3:6: the '{' opened here is never closed; add '}' after its last item"]


def test_flow_name_must_match_file() -> None:
    errs = errors_of("flow: other\nstart: a\nnodes:\n  a: {hangup: true}\n")
    assert "flow name 'other' differs from the file name 'f'" in errs[0]


def test_version_is_a_content_hash() -> None:
    a = parse_flow("start: a\nnodes:\n  a: {hangup: true}\n", file="f.yaml", name="f")
    b = parse_flow("start: a\nnodes:\n  a: {hangup: true}  # x\n", file="f.yaml", name="f")
    assert a.version != b.version and len(a.version) == 12


def test_broken_bank_copy_gets_precise_errors(tmp_path: Path) -> None:
    text = (ROOT / "flows/bank.yaml").read_text(encoding="utf-8")
    text = text.replace('"3": {goto: offer,', '"3": {goto: offerz,')
    text = text.replace('pattern: "[0-9]{8}"', 'pattern: "[0-9{8}"')
    (tmp_path / "bank.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(FlowErrors) as info:
        load_flow(tmp_path / "bank.yaml")
    lines = text.splitlines()
    errors = info.value.errors
    assert {e.node for e in errors} == {"main", "balance"}
    for e in errors:
        assert e.file == str(tmp_path / "bank.yaml")
        assert ("offerz" in lines[e.line - 1]) or ("pattern" in lines[e.line - 1])


def test_shipped_schema_matches_its_generator() -> None:
    generated = runpy.run_path(str(ROOT / "scripts/gen_schema.py"))["schema"]
    assert json.loads(json.dumps(generated)) == flow_schema()


def test_a_broken_survey_prompt_is_an_error_not_a_crash() -> None:
    errs = errors_of("""
        start: a
        surveys:
          after:
            questions:
              - {id: q, prompt: "Rate us from 1 to 5."}
            thanks: "Than{k you."
        nodes:
          a: {hangup: true}
    """)
    assert len(errs) == 1 and errs[0].startswith("f.yaml:7:13: bad placeholder in 'Than{k you.'")
