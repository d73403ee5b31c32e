"""Prometheus metrics of one running server (``GET /metrics`` on the admin API).

:class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry` (never the
process-global one), so two servers in one process (the tests) count separately. Everything
else only calls its typed methods; none of them raises.

==============================  =========  =================================================
name                            type       labels / meaning
==============================  =========  =================================================
``ivr_calls_in_progress``       gauge      ``flow``: inbound calls walking a flow now
``ivr_calls_total``             counter    ``flow``, ``outcome``: finished inbound calls
``ivr_node_seconds``            histogram  ``flow``, ``node_kind``: time spent in one node
``ivr_recognizer_seconds``      histogram  decoding time of one utterance (worker thread)
``ivr_ami_reconnects_total``    counter    AMI logins after a lost link
``ivr_agi_rejected_total``      counter    calls over ``agi.max_connections``, handed back
                                           to the dialplan unserved
``ivr_flow_reloads_total``      counter    ``result``: ``ok``, ``partial`` (some files kept
                                           their previous version), ``error`` (nothing
                                           changed)
``ivr_flow_errors``             gauge      flow files with errors right now
``ivr_webhooks_total``          counter    ``event``, ``result``: webhook posts ``sent``,
                                           to ``retry``, or given up (``failed``)
==============================  =========  =================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ivr.speech.base import Recognition, Recognizer, SpeechChoice, SpeechEngine

__all__ = ["CONTENT_TYPE", "Metrics", "TimedEngine"]

CONTENT_TYPE = CONTENT_TYPE_LATEST  # text/plain; version=0.0.4; charset=utf-8

# A node lasts from a few ms (set, branch) to minutes (a menu waiting, an agent queue).
NODE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
RECOGNIZER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
RELOAD_RESULTS = ("ok", "partial", "error")


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

    def call_started(self, flow: str) -> None:
        """An inbound call started walking ``flow``."""
        self._in_progress.labels(flow=flow).inc()

    def call_finished(self, flow: str, outcome: str) -> None:
        """The call started with :meth:`call_started` ended with ``outcome``."""
        self._in_progress.labels(flow=flow).dec()
        self._calls.labels(flow=flow, outcome=outcome).inc()

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
