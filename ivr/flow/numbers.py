"""Which numbers the server may call back (queued callbacks, outbound surveys).

Every callback is a call the business pays for, placed to a number a caller chose: the
toll-fraud path. The server's configuration (section ``numbers``, :class:`NumberPolicy`)
sets the rules; a flow's ``number_policy:`` (:class:`~ivr.flow.model_values.NumberRules`) may only
narrow them, except ``edit`` (letting the caller key another number than their own), which
is a flow's choice. :func:`effective` combines the two into a :class:`CallPolicy`.

A number is digits with an optional leading ``+`` (:data:`NUMBER`, anchored with ``\\A``
and ``\\Z``: ``$`` would also accept a trailing newline). Prefix lists are judged by the
longest matching prefix, as in a routing table: with ``allow: ["+86"]`` and ``deny: ["+"]``,
``+8613800138000`` may be called and ``+4420...`` may not; a deny as long as an allow wins.
With an allow list, a number matching none of it is refused. Emergency numbers are refused
whatever the rules say. The daily limits are counted where bookings are stored
(:class:`ivr.outbound.jobs.Outbound`), in the transaction that books.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ivr.flow.model_values import NumberRules

NUMBER = re.compile(r"\A\+?[0-9]{3,15}\Z")  # the only shape that may reach a dial string
_DIGITS = re.compile(r"\A\+?[0-9]+\Z")

# International (ITU 00, NANP 011, E.164 +) and premium-rate prefixes (NANP 900/976, with and
# without the 1; 0900 in NL, DE, AT, CH, BE). National premium ranges differ by country: add
# yours in the configuration (e.g. UK 09, FR 089, AU 190).
DEFAULT_DENY = ("+", "00", "011", "900", "976", "1900", "1976", "0900")

# Never called back, whatever the policy (a callback to them would be a false emergency call).
EMERGENCY = frozenset(
    {
        "000",
        "08",
        "100",
        "101",
        "102",
        "108",
        "110",
        "111",
        "112",
        "119",
        "120",
        "122",
        "911",
        "999",
    }
)

Refusal = Literal[
    "not_a_number",  # not digits (with an optional leading +)
    "emergency",
    "too_short",
    "too_long",
    "denied_prefix",  # its longest matching prefix is a denied one
    "not_allowed",  # there is an allow list, and no prefix of it matches
    "no_caller_number",  # editing is off and the caller's own number is withheld or bad
    "edit_not_allowed",  # the caller asked for another number; the flow does not allow it
    "caller_limit",
    "number_limit",  # the daily limits
    "short_wait",  # the callback key in the queue while the wait is under the offer's over_s
    "opted_out",  # (surveys) the number is on the opt-out list
]


@dataclass(frozen=True)
class Prefixes:
    """One layer of prefix rules (the server's, or a flow's)."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def judge(self, number: str) -> Refusal | None:
        allowed, denied = _longest(self.allow, number), _longest(self.deny, number)
        if denied >= 0 and denied >= allowed:
            return "denied_prefix"
        if self.allow and allowed < 0:
            return "not_allowed"
        return None


def _longest(prefixes: Sequence[str], number: str) -> int:
    """The length of the longest of ``prefixes`` that ``number`` starts with; -1: none."""
    return max((len(p) for p in prefixes if number.startswith(p)), default=-1)


@dataclass(frozen=True)
class NumberPolicy:
    """The server's rules for numbers it calls back (configuration section ``numbers``)."""

    allow_prefixes: tuple[str, ...] = ()  # empty: any number not denied
    deny_prefixes: tuple[str, ...] = DEFAULT_DENY
    min_digits: int = 7  # shorter: short codes, service and emergency numbers
    max_digits: int = 15  # E.164's longest
    per_caller_per_day: int = 3  # bookings of one kind by one caller in 24 h
    per_number_per_day: int = 3  # bookings of one kind to one number in 24 h
    edit: bool = False  # the caller may key another number than their own (flows may turn on)


@dataclass(frozen=True)
class CallPolicy:
    """The rules one booking is checked against: the server's, narrowed by the flow's."""

    layers: tuple[Prefixes, ...]
    min_digits: int
    max_digits: int
    per_caller_per_day: int
    per_number_per_day: int
    edit: bool

    def check(self, number: str) -> Refusal | None:
        """Why ``number`` may not be called back, or None when it may."""
        if not _DIGITS.match(number):
            return "not_a_number"
        digits = number.removeprefix("+")
        if digits in EMERGENCY:
            return "emergency"
        if len(digits) < self.min_digits:
            return "too_short"
        if len(digits) > self.max_digits:
            return "too_long"
        for layer in self.layers:
            refusal = layer.judge(number)
            if refusal is not None:
                return refusal
        return None if NUMBER.match(number) else "not_a_number"  # whatever the lengths say


def effective(server: NumberPolicy, flow: NumberRules | None) -> CallPolicy:
    """The server's policy narrowed by a flow's ``number_policy:`` (``edit`` is the flow's)."""
    base = CallPolicy(
        layers=(Prefixes(server.allow_prefixes, server.deny_prefixes),),
        min_digits=server.min_digits,
        max_digits=server.max_digits,
        per_caller_per_day=server.per_caller_per_day,
        per_number_per_day=server.per_number_per_day,
        edit=server.edit,
    )
    if flow is None:
        return base
    return CallPolicy(
        layers=(*base.layers, Prefixes(flow.allow_prefixes, flow.deny_prefixes)),
        min_digits=max(base.min_digits, flow.min_digits or 0),
        max_digits=min(base.max_digits, flow.max_digits or base.max_digits),
        per_caller_per_day=_lower(base.per_caller_per_day, flow.per_caller_per_day),
        per_number_per_day=_lower(base.per_number_per_day, flow.per_number_per_day),
        edit=base.edit if flow.edit is None else flow.edit,
    )


def _lower(server: int, flow: int | None) -> int:
    return server if flow is None else min(server, flow)


def check_settings(policy: NumberPolicy) -> list[str]:
    """What is wrong with the configured policy (for :mod:`ivr.config`), empty if nothing."""
    problems = [
        f"prefix {p!r} is not digits (with an optional leading +)"
        for p in (*policy.allow_prefixes, *policy.deny_prefixes)
        if not re.fullmatch(r"\+?[0-9]*", p) or not p
    ]
    if not 3 <= policy.min_digits <= policy.max_digits <= 15:
        problems.append(
            f"min_digits {policy.min_digits} and max_digits {policy.max_digits} "
            "must satisfy 3 <= min_digits <= max_digits <= 15"
        )
    if policy.per_caller_per_day < 0 or policy.per_number_per_day < 0:
        problems.append("per_caller_per_day and per_number_per_day must be 0 or more")
    return problems
