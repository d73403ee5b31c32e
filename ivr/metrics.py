"""Prometheus metrics of one running server (``GET /metrics`` on the admin API).

:class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry` (never the
process-global one), so two servers in one process (the tests) count separately. Everything
else only calls its typed methods; none of them raises.

=========================================  =========  ======================================
name                                       type       labels / meaning
=========================================  =========  ======================================
``ivr_calls_in_progress``                  gauge      ``flow``: inbound calls walking a flow
``ivr_calls_total``                        counter    ``flow``, ``outcome``: finished calls
``ivr_node_seconds``                       histogram  ``flow``, ``node_kind``: one node's time
``ivr_recognizer_seconds``                 histogram  decoding time of one utterance
``ivr_ami_reconnects_total``               counter    AMI logins after a lost link
``ivr_agi_rejected_total``                 counter    calls over ``agi.max_connections``,
                                                      handed back to the dialplan unserved
``ivr_flow_reloads_total``                 counter    ``result``: ``ok``, ``partial`` (some
                                                      files kept their previous version),
                                                      ``error`` (nothing changed)
``ivr_flow_errors``                        gauge      flow files with errors right now
``ivr_webhooks_total``                     counter    ``event``, ``result``: posts ``sent``,
                                                      to ``retry``, or given up (``failed``)
``ivr_webhooks_pending``                   gauge      outbox events not delivered yet
``ivr_webhooks_oldest_pending_seconds``    gauge      the oldest one's age (0: none)
``ivr_agi_command_errors_total``           counter    ``command`` (the AGI verb), ``kind``:
                                                      ``invalid`` (510), ``usage`` (520),
                                                      ``reply`` (another code), ``failed``
                                                      (a missing sound, an unknown
                                                      application, a failed recording)
``ivr_agi_command_timeouts_total``         counter    ``command``: no reply in time (the
                                                      call is closed)
``ivr_store_write_seconds``                histogram  a record write (call begin, finish)
                                                      from queued to committed
``ivr_store_writes_queued``                gauge      record writes queued or committing
``ivr_store_backlog``                      gauge      record writes the database refused,
                                                      in the journal until replayed
``ivr_outbound_dials_total``               counter    ``kind``, ``result``
                                                      (:data:`DIAL_RESULTS`): Originates
``ivr_outbound_jobs_due``                  gauge      outbound jobs due, not placed yet
``ivr_build_info``                         gauge      ``version``, ``python``, ``sqlite``: 1
=========================================  =========  ======================================

The outbox and due-job gauges are sampled every 15 s by ``ivr.app.backlogs`` (two indexed
counts), never at scrape time: ``/metrics`` is open and must not load the store.

Plus the library's process and Python collectors (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, ``process_open_fds``, ``process_start_time_seconds``,
``python_info``, ``python_gc_*``). No label ever holds a caller's number or a call id: the
label values come from fixed lists or from the flows' names and node kinds.
"""

from __future__ import annotations

import platform
import sqlite3
import time
from collections.abc import Callable, Sequence

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ivr import __version__
from ivr.speech.base import Recognition, Recognizer, SpeechChoice, SpeechEngine

__all__ = ["CONTENT_TYPE", "Metrics", "TimedEngine"]

CONTENT_TYPE = CONTENT_TYPE_LATEST  # text/plain; version=0.0.4; charset=utf-8

# A node lasts from a few ms (set, branch) to minutes (a menu waiting, an agent queue).
NODE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
RECOGNIZER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
RELOAD_RESULTS = ("ok", "partial", "error")
# A record write waits the commit window (0.1 s) and a batch; seconds mean a sick disk.
STORE_WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)
# Every AGI verb the channel sends; anything else counts as "other" (bounded labels).
AGI_COMMANDS = frozenset(
    {
        "ANSWER", "STREAM FILE", "RECORD", "WAIT FOR DIGIT", "SAY DIGITS", "SAY NUMBER",
        "SAY DATE", "GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "EXEC", "HANGUP",
        "VERBOSE", "NOOP",
    }
)  # fmt: skip
AGI_ERROR_KINDS = ("invalid", "usage", "reply", "failed")
OUTBOUND_KINDS = ("callback", "survey", "campaign")
DIAL_RESULTS = (
    "answered", "busy", "no_answer", "congestion", "hung_up", "failed", "ami_error", "other",
)  # fmt: skip


class Metrics:
    """The server's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._in_progress = Gauge(
            "ivr_calls_in_progress", "Inbound calls walking a flow now", ["flow"], registry=r
        )
        self._calls = Counter(
            "ivr_calls",
            "Finished inbound calls by flow and outcome",
            ["flow", "outcome"],
            registry=r,
        )
        self._nodes = Histogram(
            "ivr_node_seconds",
            "Time spent in one flow node, by flow and node kind",
            ["flow", "node_kind"],
            buckets=NODE_BUCKETS,
            registry=r,
        )
        self._node_children: dict[tuple[str, str], Histogram] = {}
        self._in_progress_children: dict[str, Gauge] = {}
        self._calls_children: dict[tuple[str, str], Counter] = {}
        self._recognizer = Histogram(
            "ivr_recognizer_seconds",
            "Speech recogniser decoding time of one utterance",
            buckets=RECOGNIZER_BUCKETS,
            registry=r,
        )
        self._ami_reconnects = Counter(
            "ivr_ami_reconnects", "AMI logins after a lost link", registry=r
        )
        self._agi_rejected = Counter(
            "ivr_agi_rejected",
            "Calls over agi.max_connections, handed back to the dialplan",
            registry=r,
        )
        self._reloads = Counter(
            "ivr_flow_reloads", "Flow directory reloads by result", ["result"], registry=r
        )
        self._flow_errors = Gauge(
            "ivr_flow_errors", "Flow files with errors (not serving their latest text)", registry=r
        )
        self._webhooks = Counter(
            "ivr_webhooks", "Webhook posts by event and result", ["event", "result"], registry=r
        )
        self._ami_reconnects.inc(0)
        self._agi_rejected.inc(0)
        for result in RELOAD_RESULTS:  # every series present from the start, at 0
            self._reloads.labels(result=result).inc(0)
        self._operations(r)

    def _operations(self, r: CollectorRegistry) -> None:
        """What an operator alerts on: the process, AGI failures, the store, outbound and
        webhook backlogs, and which build runs."""
        ProcessCollector(registry=r)  # process_cpu_seconds_total, ..._resident_memory_bytes
        PlatformCollector(registry=r)  # python_info
        if GC_COLLECTOR is not None:  # None where gc.get_stats is missing (not CPython)
            GCCollector(registry=r)  # python_gc_objects_collected_total, ...
        Info("ivr_build", "The ivr build serving", registry=r).info(
            {
                "version": __version__,
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
            }
        )
        self._agi_errors = Counter(
            "ivr_agi_command_errors",
            "AGI commands Asterisk refused or that failed, by verb and kind",
            ["command", "kind"],
            registry=r,
        )
        self._agi_timeouts = Counter(
            "ivr_agi_command_timeouts",
            "AGI commands with no reply within their deadline, by verb",
            ["command"],
            registry=r,
        )
        self._store_write = Histogram(
            "ivr_store_write_seconds",
            "A call record write from queued to committed",
            buckets=STORE_WRITE_BUCKETS,
            registry=r,
        )
        self._store_queued = Gauge(
            "ivr_store_writes_queued", "Record writes queued or being committed", registry=r
        )
        self._store_backlog = Gauge(
            "ivr_store_backlog",
            "Record writes the database refused, waiting in the journal to be replayed",
            registry=r,
        )
        self._dials = Counter(
            "ivr_outbound_dials",
            "Outbound call attempts by kind and what Asterisk said",
            ["kind", "result"],
            registry=r,
        )
        self._jobs_due = Gauge(
            "ivr_outbound_jobs_due", "Outbound jobs due and not placed yet", registry=r
        )
        self._webhooks_pending = Gauge(
            "ivr_webhooks_pending", "Webhook events not delivered yet", registry=r
        )
        self._webhooks_age = Gauge(
            "ivr_webhooks_oldest_pending_seconds",
            "Age of the oldest webhook event not delivered yet (0: none)",
            registry=r,
        )
        for kind in OUTBOUND_KINDS:  # rates and ratios need the series before the first dial
            for result in DIAL_RESULTS:
                self._dials.labels(kind=kind, result=result).inc(0)

    def call_started(self, flow: str) -> None:
        """An inbound call started walking ``flow``."""
        child = self._in_progress_children.get(flow)
        if child is None:  # labels() costs more than inc(): once per flow
            child = self._in_progress_children[flow] = self._in_progress.labels(flow=flow)
        child.inc()

    def call_finished(self, flow: str, outcome: str) -> None:
        """The call started with :meth:`call_started` ended with ``outcome``."""
        gauge = self._in_progress_children.get(flow) or self._in_progress.labels(flow=flow)
        gauge.dec()
        key = (flow, outcome)
        child = self._calls_children.get(key)
        if child is None:
            child = self._calls_children[key] = self._calls.labels(flow=flow, outcome=outcome)
        child.inc()

    def node_done(self, flow: str, kind: str, seconds: float) -> None:
        """One node of ``flow`` (``menu``, ``play``...) took ``seconds``
        (the ``Services.on_node`` hook of the interpreter)."""
        key = (flow, kind)
        child = self._node_children.get(key)
        if child is None:  # labels() costs more than the observation: once per flow and kind
            child = self._node_children[key] = self._nodes.labels(flow=flow, node_kind=kind)
        child.observe(max(0.0, seconds))

    def recognized(self, seconds: float) -> None:
        """A recogniser decoded one utterance in ``seconds``."""
        self._recognizer.observe(max(0.0, seconds))

    def ami_reconnected(self) -> None:
        """AMI logged in again after losing its link."""
        self._ami_reconnects.inc()

    def agi_rejected(self) -> None:
        """A call came in over ``agi.max_connections`` and went back to the dialplan."""
        self._agi_rejected.inc()

    def reload(self, result: str) -> None:
        """A flow reload ended with ``result`` (one of :data:`RELOAD_RESULTS`)."""
        self._reloads.labels(result=result).inc()

    def flow_errors(self, files: int) -> None:
        """``files`` flow files have errors now."""
        self._flow_errors.set(files)

    def webhook(self, event: str, result: str) -> None:
        """A webhook post of ``event``: ``sent``, ``retry`` (due again later) or ``failed``."""
        self._webhooks.labels(event=event, result=result).inc()

    def agi_command_error(self, command: str, kind: str) -> None:
        """An AGI ``command`` (its verb) failed: ``timeout`` or one of
        :data:`AGI_ERROR_KINDS`."""
        verb = command if command in AGI_COMMANDS else "other"
        if kind == "timeout":
            self._agi_timeouts.labels(command=verb).inc()
        else:
            self._agi_errors.labels(command=verb, kind=kind).inc()

    def store_written(self, seconds: float) -> None:
        """A record write was committed ``seconds`` after it was queued."""
        self._store_write.observe(max(0.0, seconds))

    def watch_store(self, queued: Callable[[], int], backlog: Callable[[], int]) -> None:
        """Read the store's write queue and journal backlog at each scrape."""
        self._store_queued.set_function(queued)
        self._store_backlog.set_function(backlog)

    def dialed(self, kind: str, result: str) -> None:
        """An outbound call attempt of ``kind`` ended its Originate with ``result``."""
        kind = kind if kind in OUTBOUND_KINDS else "other"
        self._dials.labels(kind=kind, result=result if result in DIAL_RESULTS else "other").inc()

    def backlogs(self, webhooks_pending: int, oldest_s: float, jobs_due: int) -> None:
        """The sampled backlogs: undelivered webhook events and the oldest one's age,
        outbound jobs due."""
        self._webhooks_pending.set(webhooks_pending)
        self._webhooks_age.set(max(0.0, oldest_s))
        self._jobs_due.set(jobs_due)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


class TimedEngine:
    """A :class:`SpeechEngine` whose recognisers report their decoding time to ``observe``:
    the time spent in ``accept`` and ``result`` of one utterance, added up."""

    def __init__(self, engine: SpeechEngine, observe: Callable[[float], None]) -> None:
        self.engine = engine
        self.name = engine.name
        self.thresholds = engine.thresholds
        self._observe = observe

    def languages(self) -> frozenset[str]:
        return self.engine.languages()

    def recognizer(self, choices: Sequence[SpeechChoice], language: str) -> Recognizer:
        return _TimedRecognizer(self.engine.recognizer(choices, language), self._observe)


class _TimedRecognizer:
    def __init__(self, inner: Recognizer, observe: Callable[[float], None]) -> None:
        self._inner = inner
        self._observe = observe
        self._spent = 0.0

    def accept(self, pcm: bytes) -> None:
        started = time.perf_counter()
        try:
            self._inner.accept(pcm)
        finally:
            self._spent += time.perf_counter() - started

    def result(self) -> Recognition:
        started = time.perf_counter()
        try:
            return self._inner.result()
        finally:
            self._spent += time.perf_counter() - started
            self._observe(self._spent)
