"""Generate ivr/flow/schema.json, the flow language's JSON Schema (run from the repo root), and
its copy flows/flow.schema.json that the sample flows' modeline points at.

The schema is written here in Python because it repeats many small shapes; the JSON file is what
ships. What it tells editors besides the shapes (the kind key picking a node's branch, the
allowed keys, each key's default read from the model, examples) is in schema_docs.py.
tests/unit/test_flow_loader.py checks the two agree; tests/unit/test_flow_schema_model.py checks
the schema and the model (ivr/flow/model.py) agree: the same node kinds, every field default
valid where the YAML sets it and shown as the key's default, and every key of a node a field
of its class; tests/unit/test_flow_schema_editor.py checks it as an editor uses it.
"""

import json
import sys
from pathlib import Path

from ivr.flow.model import KINDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schema_docs import document, list_allowed_keys, node_defs

LANG = "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
ID = "^[A-Za-z_][A-Za-z0-9_]*$"
VAR = "^[A-Za-z_][A-Za-z0-9_]*$"


def obj(props, required=(), desc=None, **kw):
    d = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        d["required"] = list(required)
    if desc:
        d["description"] = desc
    d.update(kw)
    return d


target = {"$ref": "#/$defs/target"}
S = lambda desc: {"type": "string", "description": desc}
# Only play and say nodes take it: the caller was served once they heard the answer.
served = {
    "type": "boolean",
    "description": "Once this prompt has played, the caller was served: the call counts as self-service when the caller hangs up or the flow ends it later (not abandoned, not failed_in_ivr).",
}
common = {
    "next": {
        **target,
        "description": "Node to go to afterwards (or 'hangup', or 'return' inside a sub-flow).",
    },
    "description": S("A note for people reading the flow; ignored by the server."),
}


def node(kind, spec, extra=None, req_next=False, desc=""):
    props = {kind: spec, **{k: v for k, v in common.items() if k != "next" or req_next}}
    props.update(extra or {})
    return obj(props, [kind] + (["next"] if req_next else []), desc)


retry = obj(
    {
        "prompt": {"$ref": "#/$defs/prompt"},
        "max": {
            "type": "integer",
            "minimum": 0,
            "maximum": 10,
            "description": "Retries allowed; one more failure goes to 'then'.",
        },
        "then": target,
    },
    desc="Retry handling: say 'prompt', retry up to 'max' times, then go to 'then' (default: the node's 'otherwise').",
)
timeout = {"type": "number", "exclusiveMinimum": 0, "maximum": 120}
templ = {"type": "string", "description": "Text with {variable} or {variable:format} placeholders."}
schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    # where `ivr serve`'s admin API answers with its default address (it serves the schema
    # with the $id of the address it was asked at)
    "$id": "http://127.0.0.1:8080/schema/flow.json",
    "title": "ivr flow",
    "description": "A call flow for the ivr FastAGI server: nodes that play prompts, take DTMF, branch, look up data and transfer.",
    "type": "object",
    "additionalProperties": False,
    "required": ["start", "nodes"],
    "properties": {
        "flow": {
            "type": "string",
            "pattern": ID,
            "description": "Flow name; must match the file name (bank.yaml -> bank).",
        },
        "version": {
            "type": ["string", "number"],
            "description": "A label for people; records also store a hash of the file.",
        },
        "description": S("What this flow is for."),
        "language": {
            "type": "string",
            "pattern": LANG,
            "description": "Default language of prompts.",
        },
        "languages": {
            "type": "array",
            "items": {"type": "string", "pattern": LANG},
            "uniqueItems": True,
        },
        "timezone": {
            "type": "string",
            "description": "IANA time zone for hours and time conditions, e.g. Asia/Shanghai.",
        },
        "start": {"type": "string", "pattern": ID, "description": "First node."},
        "variables": {
            "type": "object",
            "propertyNames": {"pattern": VAR},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
            "description": "Initial values of flow variables.",
        },
        "defaults": obj(
            {
                "timeout_s": timeout,
                "inter_digit_timeout_s": timeout,
                "no_input": retry,
                "no_match": retry,
            },
            desc="Defaults for every menu and collect node.",
        ),
        "nodes": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": ID},
            "additionalProperties": {"$ref": "#/$defs/node"},
        },
        "surveys": {
            "type": "object",
            "propertyNames": {"pattern": ID},
            "additionalProperties": {"$ref": "#/$defs/survey"},
            "description": "Post-call surveys, by name: used by queue nodes (survey: NAME) and survey nodes.",
        },
        "sensitive": {
            "type": "array",
            "items": {"type": "string", "pattern": VAR},
            "uniqueItems": True,
            "description": "Variables masked in records, logs and the API besides those of sensitive collect nodes (e.g. ones passed in the AGI URL). Variables set from a sensitive one are masked too.",
        },
        "number_policy": obj(
            {
                "allow_prefixes": {
                    "type": "array",
                    "items": {"$ref": "#/$defs/prefix"},
                    "description": "Only numbers starting with one of these (the longest matching prefix decides).",
                },
                "deny_prefixes": {
                    "type": "array",
                    "items": {"$ref": "#/$defs/prefix"},
                    "description": "Never numbers starting with one of these (added to the server's).",
                },
                "min_digits": {"type": "integer", "minimum": 3, "maximum": 15},
                "max_digits": {"type": "integer", "minimum": 3, "maximum": 15},
                "per_caller_per_day": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Bookings of one kind by one caller in 24 h (at most the server's).",
                },
                "per_number_per_day": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Bookings of one kind to one number in 24 h (at most the server's).",
                },
                "edit": {
                    "type": "boolean",
                    "description": "The caller may key another number than their own (default: the server's, false).",
                },
            },
            desc="Which numbers this flow's callbacks and outbound surveys may call: narrows the server's 'numbers' configuration.",
        ),
    },
    "$defs": {
        "target": {
            "type": "string",
            "pattern": ID,
            "description": "A node id, or hangup / return / repeat / back.",
        },
        "prefix": {
            "type": "string",
            "pattern": "^\\+?[0-9]*$",
            "minLength": 1,
            "description": "Digits a number starts with, e.g. '0900' or '+' (quote it: YAML reads 0900 as 900).",
        },
        "language_map": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": LANG},
            "additionalProperties": {"type": "string"},
        },
        "prompt_part": {
            "oneOf": [
                {
                    "type": "string",
                    "description": "Text in the flow's language, spoken by TTS; {var:digits|number|currency|date} is said by Asterisk.",
                },
                {"$ref": "#/$defs/language_map"},
                obj(
                    {"file": {"oneOf": [{"type": "string"}, {"$ref": "#/$defs/language_map"}]}},
                    ["file"],
                    "A recording in prompts/ (name without extension).",
                ),
                obj(
                    {"sound": {"type": "string"}},
                    ["sound"],
                    "An Asterisk stock sound, e.g. hello-world.",
                ),
                obj(
                    {"text": {"type": "string"}, "language": {"type": "string", "pattern": LANG}},
                    ["text", "language"],
                    "Text always spoken in this language (e.g. a language-choice prompt).",
                ),
                obj({"digits": templ}, ["digits"]),
                obj({"number": templ}, ["number"]),
                obj({"currency": templ}, ["currency"]),
                obj({"date": templ}, ["date"]),
            ]
        },
        "prompt": {
            "oneOf": [
                {"$ref": "#/$defs/prompt_part"},
                {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/prompt_part"}},
            ]
        },
        "assign": {
            "type": "object",
            "propertyNames": {"pattern": VAR},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "option": {
            "oneOf": [
                target,
                obj(
                    {
                        "goto": target,
                        "words": {"type": "array", "items": {"type": "string", "minLength": 1}},
                        "set": {"$ref": "#/$defs/assign"},
                        "description": S("For people."),
                    },
                    ["goto"],
                ),
            ]
        },
        "play_node": node(
            "play",
            {"$ref": "#/$defs/prompt"},
            {"barge_in": {"type": "boolean"}, "served": served},
            True,
            "Play a prompt.",
        ),
        "say_node": node(
            "say",
            {"$ref": "#/$defs/prompt"},
            {"barge_in": {"type": "boolean"}, "served": served},
            True,
            "Say values (digits, number, currency, date) and text.",
        ),
        "menu_node": node(
            "menu",
            obj(
                {
                    "prompt": {"$ref": "#/$defs/prompt"},
                    "short_prompt": {"$ref": "#/$defs/prompt"},
                    "input": {
                        "type": "array",
                        "items": {"enum": ["dtmf", "speech"]},
                        "minItems": 1,
                        "uniqueItems": True,
                    },
                    "options": {
                        "type": "object",
                        "minProperties": 1,
                        "propertyNames": {"pattern": "^[0-9*#]{1,8}$"},
                        "additionalProperties": {"$ref": "#/$defs/option"},
                    },
                    "timeout_s": timeout,
                    "inter_digit_timeout_s": timeout,
                    "terminator": {"enum": ["#", "*", ""]},
                    "barge_in": {
                        "type": "boolean",
                        "description": "Speech or a key stops the prompt.",
                    },
                    "min_speech_ms": {
                        "type": "integer",
                        "minimum": 50,
                        "maximum": 3000,
                        "description": "Speech shorter than this does not stop the prompt.",
                    },
                    "max_speech_s": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 60,
                        "description": "An utterance is cut off after this.",
                    },
                    "min_confidence": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": "Spoken choices: a choice heard with a lower confidence "
                        "(0..1) is a no-match. Default: the recogniser's calibrated value "
                        "(ivr stt --json shows confidences).",
                    },
                    "accept_confidence": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": "Spoken choices: from this confidence on a choice is "
                        "taken at once; between min_confidence and this the caller is asked to "
                        "confirm it. Default: the recogniser's calibrated value.",
                    },
                    "confirm": {
                        "enum": ["auto", "always", "never"],
                        "description": "Confirm a spoken choice with 'Did you say ...?': auto "
                        "(only when the recogniser is unsure), always, or never.",
                    },
                    "confirm_prompt": {
                        "$ref": "#/$defs/prompt",
                        "description": "The confirmation question; {choice} is replaced by the "
                        "option's first word. Default: 'Did you say {choice}? Say yes or no, or "
                        "press 1 for yes and 2 for no.' (and its Chinese and Korean versions).",
                    },
                    "no_input": retry,
                    "no_match": retry,
                    "otherwise": target,
                },
                ["prompt", "options"],
            ),
            desc="Ask the caller to choose, by key or (input: [dtmf, speech]) by voice.",
        ),
        "collect_node": node(
            "collect",
            obj(
                {
                    "prompt": {"$ref": "#/$defs/prompt"},
                    "into": {"type": "string", "pattern": VAR},
                    "digits": obj(
                        {
                            "min": {"type": "integer", "minimum": 1, "maximum": 64},
                            "max": {"type": "integer", "minimum": 1, "maximum": 64},
                            "end": {"enum": ["#", "*", ""]},
                        }
                    ),
                    "pattern": {
                        "type": "string",
                        "description": "Regular expression the whole input must match.",
                    },
                    "confirm": {"$ref": "#/$defs/prompt"},
                    "sensitive": {"type": "boolean"},
                    "timeout_s": timeout,
                    "inter_digit_timeout_s": timeout,
                    "no_input": retry,
                    "no_match": retry,
                    "otherwise": target,
                },
                ["prompt", "into"],
            ),
            desc="Collect digits into a variable.",
            req_next=True,
        ),
        "set_node": node("set", {"$ref": "#/$defs/assign"}, req_next=True, desc="Set variables."),
        "branch_node": node(
            "branch",
            {
                "type": "array",
                "minItems": 1,
                "items": obj({"if": {"type": "string"}, "goto": target}, ["if", "goto"]),
            },
            {"else": target},
            desc="Go to the first case whose condition holds, else to 'else'.",
        ),
        "goto_node": node("goto", target, desc="Jump to another node."),
        "call_node": node(
            "call",
            {"type": "string", "pattern": ID, "description": "Name of the sub-flow."},
            req_next=True,
            desc="Run another flow, then come back.",
        ),
        "hours_node": node(
            "hours",
            obj(
                {
                    "timezone": {"type": "string"},
                    "open": {
                        "type": "object",
                        "additionalProperties": {
                            "oneOf": [
                                {"type": "string"},
                                {"type": "array", "items": {"type": "string"}},
                            ]
                        },
                    },
                    "holidays": {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                {"type": "string"},
                                obj(
                                    {"date": {"type": "string"}, "name": {"type": "string"}},
                                    ["date"],
                                ),
                            ]
                        },
                    },
                    "calendar": {
                        "description": "A country's public holidays (the holidays package): an"
                        " ISO code like CN, US-CA, or {country: US, subdivision: CA}. Its make-up"
                        " workdays (China's) are open days.",
                        "oneOf": [
                            {"type": "string", "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,10})?$"},
                            obj(
                                {
                                    "country": {"type": "string", "pattern": "^[A-Za-z]{2,3}$"},
                                    "subdivision": {"type": "string"},
                                },
                                ["country"],
                            ),
                        ],
                    },
                    "workdays": {
                        "type": "array",
                        "description": "Make-up workdays (YYYY-MM-DD or a range): open with the"
                        " windows of the first weekday that has any, even on a weekend.",
                        "items": {"type": "string"},
                    },
                    "when_open": target,
                    "when_closed": target,
                    "when_holiday": target,
                },
                ["open", "when_open", "when_closed"],
            ),
            desc="Branch on business hours.",
        ),
        "split_node": node(
            "split",
            {
                "type": "array",
                "minItems": 2,
                "items": obj(
                    {
                        "percent": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "maximum": 100,
                            "description": "Share of the callers, in percent; all add up to 100.",
                        },
                        "goto": target,
                        "label": {
                            "type": "string",
                            "minLength": 1,
                            "description": "The branch's name in the call record and in"
                            " 'ivr report --split' (default: its goto).",
                        },
                    },
                    ["percent", "goto"],
                ),
            },
            desc="Send each caller down one branch by percentage (A/B tests), the same branch"
            " every time: a hash of the caller id and the flow; a call without a caller id"
            " takes a random branch. The branch is recorded on the call (input kind 'split').",
        ),
        "http_node": node(
            "http",
            {
                "allOf": [
                    obj(
                        {
                            "get": {"type": "string"},
                            "post": {"type": "string"},
                            "body": {"$ref": "#/$defs/assign"},
                            "timeout_s": timeout,
                            "save": {
                                "type": "object",
                                "propertyNames": {"pattern": VAR},
                                "additionalProperties": {"type": "string"},
                            },
                            "on_error": target,
                        },
                        ["on_error"],
                    ),
                    {"oneOf": [{"required": ["get"]}, {"required": ["post"]}]},
                ]
            },
            req_next=True,
            desc="Call the configured HTTP API.",
        ),
        "transfer_node": node(
            "transfer",
            obj(
                {
                    "to": {
                        "type": "string",
                        "pattern": "^(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]+$",
                    },
                    "timeout_s": {"type": "integer", "minimum": 1, "maximum": 600},
                    "on_fail": target,
                },
                ["to", "on_fail"],
            ),
            desc="Dial an endpoint or number written in the flow.",
        ),
        "hangup_node": node(
            "hangup",
            {
                "oneOf": [
                    {"type": "null"},
                    {"type": "boolean"},
                    obj(
                        {
                            "outcome": {
                                "enum": ["self_service", "failed_in_ivr", "abandoned"],
                                "description": "Leave out to let the call decide: self_service"
                                " if the caller reached a node marked served, else"
                                " failed_in_ivr. Written, it is the outcome of every call"
                                " ending here, served or not.",
                            }
                        }
                    ),
                ]
            },
            desc="End the call.",
        ),
        "queue_node": node(
            "queue",
            obj(
                {
                    "name": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9_-]+$",
                        "description": "Queue name in queues.conf.",
                    },
                    "timeout_s": {
                        "type": "integer",
                        "minimum": 5,
                        "maximum": 7200,
                        "description": "Longest wait before 'when_timeout'.",
                    },
                    "music": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9_-]*$",
                        "description": "Music-on-hold class.",
                    },
                    "announce": {
                        "$ref": "#/$defs/prompt",
                        "description": "Said before joining; may use {queue_position}, {queue_wait_min}, {queue_agents}.",
                    },
                    "require_available": {
                        "type": "boolean",
                        "description": "Also treat 'all agents busy' as unavailable.",
                    },
                    "callback": obj(
                        {
                            "over_s": {
                                "type": "number",
                                "minimum": 0,
                                "description": "Offer when the estimated wait is at least this.",
                            },
                            "key": {"type": "string", "pattern": "^[0-9*#]$"},
                            "prompt": {"$ref": "#/$defs/prompt"},
                            "then": target,
                            "dial": {"$ref": "#/$defs/dial_pattern"},
                            "attempts": {"type": "integer", "minimum": 1, "maximum": 10},
                            "retry_after_s": {"type": "number", "minimum": 0},
                            "hours": {"$ref": "#/$defs/calling_hours"},
                            "max_concurrent": {"type": "integer", "minimum": 1, "maximum": 100},
                            "refused": {
                                **target,
                                "description": "Where a refused number goes (number_policy; default: an apology, then the queue).",
                            },
                        },
                        ["prompt", "dial"],
                        desc="Offer a callback instead of waiting.",
                    ),
                    "record": obj(
                        {
                            "consent": {
                                "$ref": "#/$defs/prompt",
                                "description": "Said before joining, e.g. 'This call may be recorded; to refuse, press 9.'",
                            },
                            "refuse_key": {
                                "type": "string",
                                "pattern": "^[0-9*#]$",
                                "description": "The key that refuses the recording (during the prompt or just after it).",
                            },
                            "wait_s": {
                                "type": "number",
                                "minimum": 0,
                                "maximum": 10,
                                "description": "How long to wait for the refuse key once the prompt has ended.",
                            },
                        },
                        ["consent"],
                        desc="Record the agent conversation (MixMonitor; recordings_dir/calls/) unless the caller refuses.",
                    ),
                    "when_unavailable": target,
                    "when_timeout": target,
                },
                ["name", "when_unavailable", "when_timeout"],
            ),
            {
                "survey": {
                    "type": "string",
                    "pattern": ID,
                    "description": "Survey to run after the agent hangs up.",
                },
                "next": common["next"],
            },
            desc="Put the caller in an agent queue (checked over AMI first).",
        ),
        "survey_node": node(
            "survey",
            {"type": "string", "pattern": ID, "description": "Name of a survey in 'surveys:'."},
            {
                "next": {
                    **target,
                    "description": "Node to go to after the survey (or 'hangup', or 'return' inside a sub-flow); with 'unanswered', only once some question was answered (status completed or partial).",
                },
                "unanswered": {
                    **target,
                    "description": "Node to go to when the caller answered no question (status no_answer: silence, or keys off the scale until the retries ran out), e.g. a goodbye that is not 'served', so the call does not count as self-service. Without it, such a caller goes to 'next' too.",
                },
            },
            desc="Run a survey now.",
        ),
        "record_node": node(
            "record",
            obj(
                {
                    "prompt": {"$ref": "#/$defs/prompt"},
                    "beep": {
                        "type": "boolean",
                        "description": "Beep before recording.",
                    },
                    "max_s": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 3600,
                        "description": "The longest message, in seconds.",
                    },
                    "silence_s": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 60,
                        "description": "This many seconds of silence end the message (0: off).",
                    },
                    "end_key": {
                        "enum": ["#", "*", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ""],
                        "description": "The key that ends the message ('': none).",
                    },
                    "min_s": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 60,
                        "description": "A message shorter than this (the silence that ended it left out) is empty.",
                    },
                    "confirm": {
                        "$ref": "#/$defs/prompt",
                        "description": "Asked after the message: 1 keeps it, 2 records it again, 3 cancels.",
                    },
                    "max_tries": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 10,
                        "description": "Recordings a caller may make, re-records included; the last is kept.",
                    },
                    "on_empty": {
                        **target,
                        "description": "Where to go when no message was left (nothing said, or cancelled).",
                    },
                },
                ["prompt", "on_empty"],
            ),
            desc="Record a message from the caller (voicemail): prompt, beep, record until the end key,"
            " silence or max_s; kept as a WAV under the recordings directory with its duration and"
            " transcript, listed in the console's Messages.",
            req_next=True,
        ),
        "calling_hours": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "description": "When outbound calls may be placed, e.g. {mon-fri: '09:00-20:00'} (the flow's timezone).",
        },
        "dial_pattern": {
            "type": "string",
            "pattern": "^(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]*\\{number\\}[A-Za-z0-9_.@:+-]*$",
            "description": "Channel to call back, with {number} (checked to be digits), e.g. PJSIP/{number}@trunk.",
        },
        "survey": obj(
            {
                "intro": {"$ref": "#/$defs/prompt"},
                "questions": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 10,
                    "items": obj(
                        {
                            "id": {"type": "string", "pattern": ID},
                            "prompt": {"$ref": "#/$defs/prompt"},
                            "scale": {"enum": ["1-5", "yes-no"]},
                        },
                        ["id", "prompt"],
                    ),
                },
                "satisfaction": {
                    "type": "string",
                    "pattern": ID,
                    "description": "Question that counts for post-call satisfaction (default: the first 1-5 one).",
                },
                "thanks": {"$ref": "#/$defs/prompt"},
                "input": {
                    "type": "array",
                    "items": {"enum": ["dtmf", "speech"]},
                    "minItems": 1,
                    "uniqueItems": True,
                },
                "timeout_s": timeout,
                "retries": {"type": "integer", "minimum": 0, "maximum": 3},
                "outbound": obj(
                    {
                        "dial": {"$ref": "#/$defs/dial_pattern"},
                        "delay_s": {"type": "number", "minimum": 0, "maximum": 86400},
                        "hours": {"$ref": "#/$defs/calling_hours"},
                        "attempts": {"type": "integer", "minimum": 1, "maximum": 10},
                        "retry_after_s": {"type": "number", "minimum": 0},
                        "max_concurrent": {"type": "integer", "minimum": 1, "maximum": 100},
                        "caller_id": {"type": "string", "pattern": "^[0-9+]*$"},
                    },
                    ["dial"],
                    desc="Call back for the survey when the caller hung up first.",
                ),
            },
            ["questions"],
            desc="A post-call survey.",
        ),
    },
}

# `node`: the node kinds come from the model (each class's yaml_keys), each needs a KIND_node
# above; its kind key picks a node's branch. Then each key's default (from the model) and example.
schema["$defs"].update(node_defs(schema["$defs"], KINDS, list(common)))
schema = document(schema, KINDS)
list_allowed_keys(schema)

if __name__ == "__main__":
    text = json.dumps(schema, indent=1, ensure_ascii=False) + "\n"
    # the copy next to the sample flows, for their modeline (`ivr schema --write DIR` writes it)
    for path in ("ivr/flow/schema.json", "flows/flow.schema.json"):
        Path(path).write_text(text, encoding="utf-8")
