"""Examples shown in the flow schema (by schema_docs.py): for each key, by the model class that
owns it, and for each node kind a short YAML node. tests/unit/test_flow_schema_editor.py checks
that each is valid where it is shown."""

from __future__ import annotations

import dataclasses
from typing import Any

from ivr.flow import model as m
from ivr.flow.queue_node import QueueNode
from ivr.flow.model_values import (
    CallbackOffer,
    NumberRules,
    OutboundSurvey,
    RecordingConsent,
    SurveyQuestion,
    SurveySpec,
)
from ivr.flow.record_node import RecordNode
from ivr.flow.split import SplitBranch


@dataclasses.dataclass
class FlowDefaults:
    """The flow's ``defaults:`` (defaults themselves: none of their own)."""


EXAMPLES: dict[type[Any], dict[str, Any]] = {
    FlowDefaults: {
        "timeout_s": 6,
        "inter_digit_timeout_s": 3,
        "no_input": {"prompt": "Sorry, I did not hear you.", "max": 2},
        "no_match": {"prompt": "Sorry, that is not an option.", "max": 2},
    },
    m.PlayNode: {
        "play": "Welcome to Example Bank.",
        "say": ["Your balance is", {"currency": "{balance}"}],
        "barge_in": True,
        "served": True,
    },
    m.MenuNode: {
        "prompt": "For sales, press 1. For support, press 2.",
        "short_prompt": "Sales 1, support 2.",
        "input": ["dtmf", "speech"],
        "options": {"1": "sales", "2": {"goto": "support", "words": ["support", "help"]}},
        "timeout_s": 8,
        "inter_digit_timeout_s": 3,
        "terminator": "",
        "barge_in": False,
        "min_speech_ms": 400,
        "max_speech_s": 8,
        "min_confidence": 0.4,
        "accept_confidence": 0.8,
        "confirm": "always",
        "confirm_prompt": "Did you say {choice}? Press 1 for yes, 2 for no.",
        "no_input": {"prompt": "Sorry, I did not hear you.", "max": 2},
        "no_match": {"prompt": "Sorry, that is not an option.", "max": 2, "then": "agent"},
        "otherwise": "goodbye",
    },
    m.Retry: {"prompt": "Sorry, I did not hear you.", "max": 3, "then": "agent"},
    m.CollectNode: {
        "prompt": "Please key in your account number, then press hash.",
        "into": "account",
        "digits": {"min": 8, "max": 12, "end": "#"},
        "min": 8,
        "max": 12,
        "end": "*",
        "pattern": "^[0-9]{8,12}$",
        "confirm": "You keyed {account:digits}. Press 1 if that is right, 2 to key it again.",
        "sensitive": True,
        "timeout_s": 10,
        "inter_digit_timeout_s": 5,
        "no_input": {"prompt": "Please key in your account number.", "max": 2},
        "no_match": {"prompt": "That number is not valid.", "max": 2, "then": "agent"},
        "otherwise": "agent",
    },
    m.SetNode: {"set": {"tries": 0, "greeting": "Hello {caller_name}"}},
    m.BranchNode: {"branch": [{"if": "balance < 0", "goto": "overdrawn"}], "else": "balance"},
    m.BranchCase: {"if": "balance < 0", "goto": "overdrawn"},
    m.GotoNode: {"goto": "menu"},
    m.CallNode: {"call": "card_services"},
    m.HoursNode: {
        "timezone": "Asia/Shanghai",
        "open": {"mon-fri": "09:00-18:00", "sat": ["10:00-12:00", "13:00-15:00"]},
        "holidays": ["2027-01-01", {"date": "2027-12-25", "name": "Christmas"}],
        "calendar": "CN",
        "workdays": ["2027-02-14"],
        "when_open": "menu",
        "when_closed": "closed",
        "when_holiday": "holiday",
    },
    m.SplitNode: {"split": [{"percent": 50, "goto": "menu_a"}, {"percent": 50, "goto": "menu_b"}]},
    SplitBranch: {"percent": 20, "goto": "new_menu", "label": "new_menu"},
    m.HttpNode: {
        "get": "/accounts/{account}/balance",
        "post": "/callbacks",
        "body": {"number": "{caller}"},
        "timeout_s": 3,
        "save": {"balance": "balance"},
        "on_error": "agent",
    },
    m.TransferNode: {"to": "PJSIP/1001", "timeout_s": 20, "on_fail": "voicemail"},
    m.HangupNode: {"hangup": True, "outcome": "abandoned"},
    QueueNode: {
        "name": "sales",
        "timeout_s": 600,
        "music": "default",
        "announce": "You are number {queue_position} in the queue.",
        "require_available": True,
        "callback": {"prompt": "To be called back, press 1.", "dial": "PJSIP/{number}@trunk"},
        "record": {"consent": "This call may be recorded; to refuse, press 9."},
        "when_unavailable": "voicemail",
        "when_timeout": "voicemail",
        "survey": "after_call",
    },
    CallbackOffer: {
        "over_s": 120,
        "key": "2",
        "prompt": "To be called back instead of waiting, press 1.",
        "then": "booked",
        "dial": "PJSIP/{number}@trunk",
        "attempts": 2,
        "retry_after_s": 600,
        "hours": {"mon-fri": "09:00-20:00"},
        "max_concurrent": 4,
        "refused": "sorry",
    },
    RecordingConsent: {
        "consent": "This call may be recorded; to refuse, press 9.",
        "refuse_key": "0",
        "wait_s": 2,
    },
    m.SurveyNode: {"survey": "after_call", "unanswered": "bye"},
    RecordNode: {
        "prompt": "Please leave a message after the tone.",
        "beep": False,
        "max_s": 60,
        "silence_s": 5,
        "end_key": "*",
        "min_s": 1,
        "confirm": "Press 1 to keep it, 2 to record it again, 3 to cancel.",
        "max_tries": 2,
        "on_empty": "goodbye",
    },
    SurveySpec: {
        "intro": "Please answer two questions about this call.",
        "questions": [{"id": "satisfied", "prompt": "How satisfied were you, 1 to 5?"}],
        "satisfaction": "satisfied",
        "thanks": "Thank you.",
        "input": ["dtmf", "speech"],
        "timeout_s": 8,
        "retries": 2,
        "outbound": {"dial": "PJSIP/{number}@trunk"},
    },
    SurveyQuestion: {"id": "solved", "prompt": "Was your problem solved?", "scale": "yes-no"},
    OutboundSurvey: {
        "dial": "PJSIP/{number}@trunk",
        "delay_s": 300,
        "hours": {"mon-fri": "09:00-20:00"},
        "attempts": 3,
        "retry_after_s": 900,
        "max_concurrent": 4,
        "caller_id": "+8610555000",
    },
    m.Flow: {
        "flow": "bank",
        "version": "2027-03",
        "description": "Example Bank's customer line.",
        "language": "zh",
        "languages": ["zh", "en"],
        "timezone": "Asia/Shanghai",
        "start": "welcome",
        "variables": {"tries": 0},
        "defaults": {"timeout_s": 6, "no_input": {"prompt": "Sorry?", "max": 2}},
        "nodes": {"welcome": {"play": "Welcome.", "next": "hangup"}},
        "surveys": {"after_call": {"questions": [{"id": "satisfied", "prompt": "1 to 5?"}]}},
        "sensitive": ["pin"],
        "number_policy": {"deny_prefixes": ["0900"]},
    },
    NumberRules: {
        "allow_prefixes": ["010", "+8610"],
        "deny_prefixes": ["0900", "+"],
        "min_digits": 7,
        "max_digits": 12,
        "per_caller_per_day": 2,
        "per_number_per_day": 3,
        "edit": True,
    },
}
COMMON_EXAMPLES = {
    "next": "goodbye",
    "served": True,
    "description": "Reviewed with the sales team in March.",
}

# Each node kind's short YAML example (a node id and its body), shown in the editor.
KIND_EXAMPLES = {
    "play": "welcome:\n  play: Welcome to Example Bank.\n  next: menu\n",
    "say": "balance:\n  say: [Your balance is, {currency: '{balance}'}]\n  served: true\n"
    "  next: goodbye\n",
    "menu": "menu:\n  menu:\n    prompt: For sales, press 1. For support, press 2.\n"
    "    options: {'1': sales, '2': support}\n    otherwise: goodbye\n",
    "collect": "account:\n  collect:\n    prompt: Please key in your account number.\n"
    "    into: account\n    digits: {min: 8, max: 12}\n    otherwise: agent\n  next: lookup\n",
    "set": "count:\n  set: {tries: 0}\n  next: menu\n",
    "branch": "check:\n  branch:\n    - {if: 'balance < 0', goto: overdrawn}\n  else: balance\n",
    "goto": "again:\n  goto: menu\n",
    "call": "cards:\n  call: card_services\n  next: goodbye\n",
    "hours": "open:\n  hours:\n    open: {mon-fri: '09:00-18:00'}\n    when_open: menu\n"
    "    when_closed: closed\n",
    "split": "ab:\n  split:\n    - {percent: 50, goto: menu_a}\n"
    "    - {percent: 50, goto: menu_b}\n",
    "http": "lookup:\n  http:\n    get: /accounts/{account}/balance\n    save: {balance: balance}\n"
    "    on_error: agent\n  next: balance\n",
    "transfer": "desk:\n  transfer:\n    to: PJSIP/1001\n    on_fail: voicemail\n",
    "hangup": "goodbye:\n  hangup: true\n",
    "queue": "agent:\n  queue:\n    name: sales\n    when_unavailable: voicemail\n"
    "    when_timeout: voicemail\n",
    "survey": "rate:\n  survey: after_call\n  unanswered: bye\n  next: goodbye\n",
    "record": "voicemail:\n  record:\n    prompt: Please leave a message after the tone.\n"
    "    on_empty: goodbye\n  next: goodbye\n",
}
