"""Contact-centre KPIs computed from call records only.

Pure functions, no I/O: :func:`report` turns :class:`~ivr.call.record.CallRecord` objects into a
JSON-ready dict, :func:`format_report` renders that dict as text, and :func:`parse_bound` reads
the ``--since``/``--until`` dates of ``ivr report``. The exact rules are in :data:`DEFINITIONS`
(also returned in every report and listed in the README).

Units: a *call* is a finished record (outcome set); every figure except ``in_progress`` counts
finished calls only. An *agent request* is the queue visit of a call that is not itself a
callback call (``variables["callback_for"]`` unset); a callback call belongs to the request it
serves: when it connects, the original request counts as answered. A call is *contained* when
the IVR alone handled it: it ended without a queue visit, without an answered transfer and
without an error (the dialplan's fallback queues a call the flow could not finish).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.call.record import CallRecord, QueueVisit, SurveyResult

__all__ = [
    "DEFINITIONS",
    "KPI_KEYS",
    "format_report",
    "is_contained",
    "nearest_rank",
    "parse_bound",
    "rate",
    "report",
    "time_zone",
]

CALLBACK_FOR = "callback_for"  # variable naming the call a callback call serves
WAITED = ("answered", "abandoned", "timeout")  # queue results where the caller waited in line
RESPONDED = ("completed", "partial")  # survey statuses that count as a response

DEFINITIONS: dict[str, str] = {
    "calls": "finished calls (outcome set), callback calls included",
    "in_progress": "calls without an outcome yet; counted in no other figure",
    "self_service_rate": "calls ending self_service (the caller reached a node marked served,"
    " and was not handed to an agent) / finished calls (errors included)",
    "containment_rate": "calls the IVR kept: ended without a queue visit (whatever its result),"
    " an answered transfer or an error (the dialplan's fallback queues it) / finished calls;"
    " failed and abandoned calls in the IVR count as contained",
    "failed_in_ivr_rate": "calls ending failed_in_ivr (the flow ended the call and the caller"
    " never reached a served node: menus failed, line closed...) / finished calls",
    "agent_requests": "finished calls with a queue visit, callback calls (callback_for) excluded",
    "agent_answer_rate": "agent requests answered by an agent, or whose callback later connected"
    " / all agent requests (no_agents, closed, timeout, abandoned and"
    " unconnected callback requests count as unanswered)",
    "abandon_rate": "agent requests abandoned while waiting / agent requests that waited"
    " (answered + abandoned + timeout)",
    "avg_wait_s": "mean wait_s of agent requests that waited (answered + abandoned + timeout)",
    "p50_wait_s": "median wait_s of agent requests that waited, nearest-rank"
    " (the ceil(0.5 n)-th smallest)",
    "p90_wait_s": "90th percentile wait_s of agent requests that waited, nearest-rank"
    " (the ceil(0.9 n)-th smallest)",
    "surveys_offered": "finished calls with a survey result, whatever its status",
    "survey_response_rate": "surveys completed or partial / surveys offered",
    "satisfaction": "post-call satisfaction: valid answers to each survey's satisfaction question"
    " in the top box (top_box highest values of its scale: 4-5 on 1-5 by"
    " default; yes on yes-no) / valid answers to that question",
    "satisfaction_answers": "valid (non-null, on-scale) answers to the satisfaction question",
    "callbacks_requested": "agent requests whose queue result is callback",
    "callbacks_placed": "finished callback calls (variables.callback_for set)",
    "callbacks_connected": "callback calls whose queue result is answered",
}
KPI_KEYS: tuple[str, ...] = tuple(DEFINITIONS)


def rate(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator`` rounded to 4 places; ``None`` when there is no denominator."""
    return None if denominator == 0 else round(numerator / denominator, 4)


def nearest_rank(values: Sequence[float], percent: int) -> float | None:
    """The nearest-rank ``percent`` percentile: the ceil(percent/100 * n)-th smallest value.

    ``None`` for no values. ``percent`` is an integer in 1..100.
    """
    if not 1 <= percent <= 100:
        raise ValueError(f"percent must be in 1..100, got {percent}")
    if not values:
        return None
    rank = -(-percent * len(values) // 100)  # ceil without floating point
    return float(sorted(values)[rank - 1])


def time_zone(tz: str) -> ZoneInfo:
    """The time zone named ``tz`` (IANA name); :class:`ValueError` if unknown."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r} (use an IANA name like Asia/Shanghai)") from exc


def _day(started_at: float, zone: ZoneInfo) -> str:
    """The calendar day (YYYY-MM-DD) of a Unix time in ``zone``."""
    return datetime.fromtimestamp(started_at, zone).date().isoformat()


def _is_callback_call(record: CallRecord) -> bool:
    return bool(record.variables.get(CALLBACK_FOR))


def _top_box_votes(survey: SurveyResult, top_box: int) -> list[bool]:
    """For each valid answer to the survey's satisfaction question: is it in the top box?

    Valid: not ``None`` and on the question's scale (``"lo-hi"`` integers, or ``yes-no`` with
    1 = yes, 0 = no). On yes-no only "yes" is top box, whatever ``top_box``.
    """
    votes: list[bool] = []
    for answer in survey.answers:
        if answer.question != survey.satisfaction or answer.value is None:
            continue
        bounds = _scale_bounds(answer.scale)
        if bounds is None or not bounds[0] <= answer.value <= bounds[1]:
            continue
        if answer.scale == "yes-no":
            votes.append(answer.value == 1)
        else:
            votes.append(answer.value > bounds[1] - top_box)
    return votes


def _scale_bounds(scale: str) -> tuple[int, int] | None:
    """``(lowest, highest)`` value of a scale, or ``None`` for an unknown scale."""
    if scale == "yes-no":
        return (0, 1)
    low, sep, high = scale.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or int(low) >= int(high):
        return None
    return (int(low), int(high))


@dataclass(slots=True)
class _Tally:
    """Counters for one group of records (overall, one flow or one day)."""

    calls: int = 0
    in_progress: int = 0
    self_service: int = 0
    contained: int = 0
    failed_in_ivr: int = 0
    agent_requests: int = 0
    answered: int = 0
    abandoned: int = 0
    waits: list[float] = field(default_factory=list)
    callback_requests: list[str] = field(default_factory=list)  # call ids
    surveys: int = 0
    responses: int = 0
    top_box: int = 0
    satisfaction_answers: int = 0
    callbacks_placed: int = 0
    callbacks_connected: int = 0

    def add(self, record: CallRecord, top_box: int) -> None:
        """Count one record."""
        if record.outcome is None:
            self.in_progress += 1
            return
        self.calls += 1
        self.self_service += record.outcome == "self_service"
        self.contained += is_contained(record)
        self.failed_in_ivr += record.outcome == "failed_in_ivr"
        if _is_callback_call(record):
            self.callbacks_placed += 1
            self.callbacks_connected += (
                record.queue is not None and record.queue.result == "answered"
            )
        elif record.queue is not None:
            self._add_request(record.call_id, record.queue)
        if record.survey is not None:
            self._add_survey(record.survey, top_box)

    def _add_request(self, call_id: str, visit: QueueVisit) -> None:
        self.agent_requests += 1
        if visit.result == "callback":
            self.callback_requests.append(call_id)
        if visit.result in WAITED:
            self.waits.append(visit.wait_s)
            self.answered += visit.result == "answered"
            self.abandoned += visit.result == "abandoned"

    def _add_survey(self, survey: SurveyResult, top_box: int) -> None:
        self.surveys += 1
        self.responses += survey.status in RESPONDED
        votes = _top_box_votes(survey, top_box)
        self.satisfaction_answers += len(votes)
        self.top_box += sum(votes)

    def kpis(self, connected: set[str]) -> dict[str, Any]:
        """The KPI dict (keys in :data:`KPI_KEYS` order); ``connected``: ids called back."""
        called_back = sum(call_id in connected for call_id in self.callback_requests)
        waits = self.waits
        return {
            "calls": self.calls,
            "in_progress": self.in_progress,
            "self_service_rate": rate(self.self_service, self.calls),
            "containment_rate": rate(self.contained, self.calls),
            "failed_in_ivr_rate": rate(self.failed_in_ivr, self.calls),
            "agent_requests": self.agent_requests,
            "agent_answer_rate": rate(self.answered + called_back, self.agent_requests),
            "abandon_rate": rate(self.abandoned, len(waits)),
            "avg_wait_s": round(sum(waits) / len(waits), 2) if waits else None,
            "p50_wait_s": nearest_rank(waits, 50),
            "p90_wait_s": nearest_rank(waits, 90),
            "surveys_offered": self.surveys,
            "survey_response_rate": rate(self.responses, self.surveys),
            "satisfaction": rate(self.top_box, self.satisfaction_answers),
            "satisfaction_answers": self.satisfaction_answers,
            "callbacks_requested": len(self.callback_requests),
            "callbacks_placed": self.callbacks_placed,
            "callbacks_connected": self.callbacks_connected,
        }


def is_contained(record: CallRecord) -> bool:
    """The IVR alone handled the finished call ``record``: no queue visit (answered or not),
    no answered transfer, no error (the dialplan's fallback queues those calls)."""
    return (
        record.outcome in ("self_service", "failed_in_ivr", "abandoned")
        and record.queue is None
        and record.transfer_target is None
    )


def _connected_callback(record: CallRecord) -> str | None:
    """The call id a finished, connected callback call served, else ``None``."""
    if record.outcome is None or record.queue is None or record.queue.result != "answered":
        return None
    return record.variables.get(CALLBACK_FOR) or None


def report(records: Iterable[CallRecord], *, tz: str = "UTC", top_box: int = 2) -> dict[str, Any]:
    """KPIs of ``records``: overall, per flow and per day (``started_at`` in ``tz``).

    Returns ``{"overall": K, "flows": {flow: K}, "days": [{"day": "YYYY-MM-DD", **K}],
    "timezone": tz, "definitions": DEFINITIONS}`` with ``days`` sorted and K keyed as
    :data:`KPI_KEYS`. Rates are in 0..1 rounded to 4 places, ``None`` when their denominator is
    0. A callback request counts as answered in the groups of the original call when a connected
    callback call for it is among ``records``. ``top_box``: how many of the highest values of a
    numeric scale count as satisfied. Raises :class:`ValueError` for an unknown ``tz`` or a
    ``top_box`` below 1. Reads ``records`` once.
    """
    if top_box < 1:
        raise ValueError(f"top_box must be >= 1, got {top_box}")
    zone = time_zone(tz)
    overall = _Tally()
    flows: dict[str, _Tally] = {}
    days: dict[str, _Tally] = {}
    connected: set[str] = set()
    for record in records:
        for tally in (
            overall,
            flows.setdefault(record.flow, _Tally()),
            days.setdefault(_day(record.started_at, zone), _Tally()),
        ):
            tally.add(record, top_box)
        original = _connected_callback(record)
        if original is not None:
            connected.add(original)
    return {
        "overall": overall.kpis(connected),
        "flows": {name: flows[name].kpis(connected) for name in sorted(flows)},
        "days": [{"day": day, **days[day].kpis(connected)} for day in sorted(days)],
        "timezone": tz,
        "definitions": dict(DEFINITIONS),
    }


def parse_bound(text: str, tz: str, *, end: bool = False) -> float:
    """A ``--since``/``--until`` value as a Unix time.

    ``text`` is ``YYYY-MM-DD`` (midnight in ``tz``; with ``end``, midnight of the next day, so
    the day is included) or an ISO 8601 date-time (taken as is; naive ones are in ``tz``).
    Raises :class:`ValueError` for anything else.
    """
    zone = time_zone(tz)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), zone).timestamp()
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


# --- text rendering -------------------------------------------------------------------------

_LABELS: dict[str, tuple[str, str]] = {  # key: (overall label, table header)
    "calls": ("calls (finished)", "calls"),
    "in_progress": ("in progress", "in_prog"),
    "self_service_rate": ("self-service rate", "self"),
    "containment_rate": ("containment rate", "contain"),
    "failed_in_ivr_rate": ("failed in IVR", "failed"),
    "agent_requests": ("agent requests", "agent"),
    "agent_answer_rate": ("agent answer rate", "answer"),
    "abandon_rate": ("abandon rate", "aband"),
    "avg_wait_s": ("average wait", "wait"),
    "p50_wait_s": ("median wait (p50)", "p50"),
    "p90_wait_s": ("p90 wait", "p90"),
    "surveys_offered": ("surveys offered", "surv"),
    "survey_response_rate": ("survey response rate", "resp"),
    "satisfaction": ("post-call satisfaction", "csat"),
    "satisfaction_answers": ("satisfaction answers", "csat_n"),
    "callbacks_requested": ("callbacks requested", "cb_req"),
    "callbacks_placed": ("callbacks placed", "cb_placed"),
    "callbacks_connected": ("callbacks connected", "cb_conn"),
}


def _cell(key: str, value: Any, *, unit: bool = False) -> str:
    """One value as text: rates as percentages with one decimal, ``None`` as ``n/a``."""
    if value is None:
        return "n/a"
    if key.endswith("_rate") or key == "satisfaction":
        return f"{value * 100:.1f}%"
    if key.endswith("_s"):
        return f"{value:.1f} s" if unit else f"{value:.1f}"
    return str(value)


def _table(first: str, rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """A left-aligned first column, then one right-aligned column per KPI."""
    header = [first, *(_LABELS[k][1] for k in KPI_KEYS)]
    body = [[name, *(_cell(k, kpis[k]) for k in KPI_KEYS)] for name, kpis in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    return [line(header), *(line(row) for row in body)]


def format_report(data: dict[str, Any]) -> str:
    """:func:`report`'s dict as text: overall figures, then a table per flow and per day."""
    overall = data["overall"]
    width = max(len(label) for label, _ in _LABELS.values())
    lines = [f"Call KPIs (days in {data['timezone']})", "", "Overall"]
    lines += [f"  {_LABELS[k][0]:<{width}}  {_cell(k, overall[k], unit=True):>8}" for k in KPI_KEYS]
    lines += ["", "By flow"]
    lines += _table("flow", list(data["flows"].items())) if data["flows"] else ["  (no calls)"]
    lines += ["", "By day"]
    days = [(d["day"], d) for d in data["days"]]
    lines += _table("day", days) if days else ["  (no calls)"]
    lines += [
        "",
        "Rates: % of their own denominator, n/a when it is 0; waits in seconds; "
        "definitions: ivr report --json, or the README.",
    ]
    return "\n".join(lines)
