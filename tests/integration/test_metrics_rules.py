"""The sample Prometheus alert rules and Grafana dashboard in ``docker/``: well formed, checked
by ``promtool`` (its rule checker and the rules' own unit tests, when it is installed: Debian's
``prometheus`` package) and naming only series a real server's ``/metrics`` has."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families

from ivr.app.server import App
from ivr.config import AdminSettings, AgiSettings, Settings, SpeechSettings, StoreSettings

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "docker" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "ivr-dashboard.json"
# Series Prometheus makes itself, not the server
SYNTHETIC = {"up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
KEYWORDS |= {"unless", "bool", "offset", "inf", "nan"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}
NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords and labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values, regexes)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in NAME.finditer(text):
        name, rest = match.group(), text[match.end() :].lstrip()
        before = text[: match.start()]
        if rest.startswith("(") or name.lower() in KEYWORDS:
            continue  # a function or an aggregation, or an operator word
        if before and (before[-1].isdigit() or before[-1] == "."):
            continue  # the unit or exponent of a number (1.5e9, 5m)
        names.add(name)
    return names


def test_the_extractor_reads_names_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{job="ivr", x=~"y|z"}[5m])))'
        " > 1.5e9 and on (instance) b_total / ignoring (k) c unless time() - d offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d"}


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every series name a freshly started server's ``/metrics`` declares."""
    tmp = tmp_path_factory.mktemp("scrape")
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(
        "start: bye\nnodes:\n  bye: {hangup: true}\n", encoding="utf-8"
    )

    async def run() -> str:
        settings = Settings(
            flows_dir=str(flows),
            prompts_dir=str(tmp / "prompts"),
            agi=AgiSettings(port=0),
            store=StoreSettings(path=str(tmp / "calls.sqlite3")),
            speech=SpeechSettings(port=0),
            admin=AdminSettings(port=0),
        )
        server = await App(settings).start()
        try:
            async with ClientSession() as http:
                response = await http.get(f"http://127.0.0.1:{server.admin.port}/metrics")
                return await response.text()
        finally:
            await server.close()

    text = asyncio.run(run())
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    yield names


def rules() -> Iterator[dict[str, Any]]:
    for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]:
        yield from group["rules"]


def test_every_alert_has_a_threshold_duration_severity_and_words() -> None:
    seen = set()
    for rule in rules():
        name = rule["alert"]
        assert name not in seen, f"{name} twice"
        seen.add(name)
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert set(rule["annotations"]) == {"summary", "description"}, name
        assert len(rule["annotations"]["description"]) > 60, name
    for wanted in (
        "IvrDown", "IvrAbsent", "IvrAgiCommandErrors", "IvrAgiCommandTimeouts",
        "IvrStoreWriteSlow", "IvrStoreQueueDeep", "IvrStoreJournalBacklog",
        "IvrWebhookBacklog", "IvrOutboundFailuresHigh", "IvrSpeechDecodeSlow", "IvrMemoryHigh",
    ):  # fmt: skip
        assert wanted in seen, wanted


def test_the_alerts_read_only_series_the_server_has(scrape: set[str]) -> None:
    used = set().union(*(metric_names(rule["expr"]) for rule in rules()))
    assert "ivr_store_write_seconds_bucket" in used and "up" in used  # the extractor works
    assert used - scrape - SYNTHETIC == set()


def test_promtool_checks_the_rules_and_runs_their_tests() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: make deps installs it (Debian: prometheus)"
    check = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(list(rules()))} rules found" in check.stdout
    unit = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every target, and the variables' queries."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            [inner] = re.findall(r"label_values\((.*),\s*\w+\)", variable["definition"])
            yield f"variable {variable['name']}", inner


def test_the_dashboard_reads_only_series_the_server_has(scrape: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert titles == {"Calls", "AGI", "Store", "Speech", "Outbound", "Webhooks", "Process"}
    used: set[str] = set()
    for title, expr in dashboard_queries(dashboard):
        names = metric_names(expr)
        assert names, title
        assert names - scrape == set(), title
        used |= names
    for wanted in (
        "ivr_agi_command_errors_total", "ivr_agi_command_timeouts_total",
        "ivr_store_write_seconds_bucket", "ivr_store_writes_queued", "ivr_store_backlog",
        "ivr_recognizer_seconds_bucket", "ivr_outbound_dials_total", "ivr_outbound_jobs_due",
        "ivr_webhooks_pending", "process_resident_memory_bytes", "ivr_calls_total",
    ):  # fmt: skip
        assert wanted in used, wanted
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
