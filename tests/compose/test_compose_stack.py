"""docker-compose.yml run for real: podman-compose brings the single-node stack up, the
`caller` service places a SIPp call into the IVR, the record is read back from the ivr
container's database, the healthchecks report healthy, and the stack is torn down.

No Docker engine runs here: Debian's podman runs the containers (CONTAINERS_CONF with
`default_ulimits = []`), scripts/container_images.sh makes the base images with debootstrap
and builds the services' images (cached: a warm run rebuilds nothing). The stack publishes
nothing on the host (tests/compose/no-host-ports.yml), so it never meets the chroot lab's
Asterisk or other tests' servers: no lab lock is taken. Without systemd, podman runs no
healthcheck on its own; the test runs each service's compose healthcheck with `podman
healthcheck run`, as the timer would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.compose_file import COMPOSE, REPO

pytestmark = pytest.mark.compose

PROJECT = "ivr-compose-test"
OVERRIDE = Path(__file__).with_name("no-host-ports.yml")
WORK = Path(os.environ.get("IVR_CONTAINERS_DIR", "/var/tmp/ivr-containers"))
IVR_UID = 10001  # docker/ivr.Dockerfile
CALLER = "5550100"  # the test calls' caller ids, to find their records
SURVEY_CALLER = "5550300"
BUILD_TIMEOUT_S = 1800
HEALTHY_WITHIN_S = 120


def _env(**extra: str) -> dict[str, str]:
    """The host's environment without IVR_* (nothing of this machine leaks into the stack)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    return {**env, "IVR_CONTAINERS_DIR": str(WORK), **extra}


def _run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


class Stack:
    """The compose project: podman-compose with the override, podman for one container."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.compose = [
            str(REPO / ".venv/bin/podman-compose"),
            "-p",
            PROJECT,
            "-f",
            str(COMPOSE),
            "-f",
            str(OVERRIDE),
        ]

    def compose_run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return _run([*self.compose, *args], self.env, timeout)

    def podman(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return _run(["podman", *args], self.env, timeout)

    def container(self, service: str) -> str:
        return f"{PROJECT}_{service}_1"

    def logs(self, service: str) -> str:
        done = self.podman("logs", self.container(service))
        return done.stdout + done.stderr

    def health(self, service: str) -> str:
        done = self.podman("inspect", self.container(service))
        state = json.loads(done.stdout)[0]["State"] if done.returncode == 0 else {}
        health = state.get("Health") or state.get("Healthcheck") or {}
        return str(health.get("Status", "")) or f"none ({state.get('Status')})"

    def wait_healthy(self, service: str) -> float:
        """Run the service's healthcheck until it passes; seconds it took."""
        started = time.monotonic()
        while True:
            done = self.podman("healthcheck", "run", self.container(service), timeout=30)
            if done.returncode == 0:
                return time.monotonic() - started
            if time.monotonic() - started > HEALTHY_WITHIN_S:
                pytest.fail(
                    f"{service} not healthy within {HEALTHY_WITHIN_S} s "
                    f"({done.stdout}{done.stderr}); its log:\n{self.logs(service)[-4000:]}"
                )
            time.sleep(2)

    def call(self, ext: str, *args: str, caller: str = CALLER) -> None:
        """A SIPp call from the caller service that Asterisk ends (the flow hangs up)."""
        done = self.compose_run(
            *("--profile", "tools", "run", "--rm", "caller", "call", ext, *args),
            *("--caller", caller, "--hold-s", "40", "--expect-hangup"),
            timeout=180,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    def record(self, caller: str) -> list[object]:
        """The finished call record of this caller: flow, outcome, path, end node, survey."""
        sql = f"SELECT flow, outcome, path, end_node, survey FROM calls WHERE caller = '{caller}'"
        deadline = time.monotonic() + 30  # written after the line is handed back
        rows = self.query(sql)
        while not (rows and rows[0][1]) and time.monotonic() < deadline:
            time.sleep(1)
            rows = self.query(sql)
        assert len(rows) == 1 and rows[0][1], (rows, self.logs("ivr")[-3000:])
        return rows[0]

    def query(self, sql: str) -> list[list[object]]:
        """Rows from the ivr container's SQLite database (store.path in ivr.yaml)."""
        script = (
            "import json, sqlite3, sys; "
            "db = sqlite3.connect('file:/var/lib/ivr/ivr.sqlite3?mode=ro', uri=True); "
            "print(json.dumps(db.execute(sys.argv[1]).fetchall()))"
        )
        done = self.podman("exec", self.container("ivr"), "python", "-c", script, sql)
        assert done.returncode == 0, done.stderr
        rows: list[list[object]] = json.loads(done.stdout)
        return rows


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for tool in ("podman", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y podman podman-compose debootstrap")
    env = _env()
    started = time.monotonic()
    built = _run([str(REPO / "scripts/container_images.sh")], env, BUILD_TIMEOUT_S)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-5000:]
    print(f"images: {time.monotonic() - started:.0f} s")
    # the server renders its prompts here as uid 10001; Asterisk reads them
    prompts = tmp_path_factory.mktemp("prompts")
    os.chown(prompts, IVR_UID, IVR_UID)
    prompts.chmod(0o755)
    env = _env(IVR_PROMPTS_DIR=str(prompts))
    env.setdefault("CONTAINERS_CONF", str(WORK / "containers.conf"))  # the script wrote it
    stack = Stack(env)
    stack.compose_run("down", "-v", "-t", "5")  # a stack left over by a killed run
    try:
        up = stack.compose_run("up", "-d", "--no-build")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield stack
    finally:
        for service in ("asterisk", "ivr"):  # for the record when something failed
            print(f"--- {service} log (tail)\n{stack.logs(service)[-3000:]}")
        down = stack.compose_run("down", "-v", "-t", "10")
        assert down.returncode == 0, down.stderr[-3000:]


def test_sipp_call_through_the_compose_stack(stack: Stack) -> None:
    asterisk_s = stack.wait_healthy("asterisk")
    ivr_s = stack.wait_healthy("ivr")
    print(f"healthy: asterisk after {asterisk_s:.1f} s, ivr after {ivr_s:.1f} s more")
    assert stack.health("asterisk") == "healthy"
    assert stack.health("ivr") == "healthy"
    # nothing on the host: the lab's Asterisk may hold 5060, 5080, 5038 and 4573 meanwhile
    published = stack.podman("port", stack.container("asterisk"))
    assert published.returncode == 0 and published.stdout.strip() == "", published.stdout
    for service in ("asterisk", "ivr"):  # not root
        user = stack.podman("top", stack.container(service), "user", "comm")
        assert user.returncode == 0, user.stderr
        rows = [line.split() for line in user.stdout.splitlines()[1:] if line.strip()]
        main = [r for r in rows if r[1] in ("asterisk", "ivr")]
        assert main and all(r[0] != "root" for r in main), user.stdout

    # the ivr healthcheck asks /healthz, which writes nothing to the log (the FastAGI
    # connection it replaces logged a line every 10 s)
    before = stack.logs("ivr").splitlines()
    for _ in range(3):
        assert stack.podman("healthcheck", "run", stack.container("ivr")).returncode == 0
    after = stack.logs("ivr").splitlines()
    assert after[len(before) :] == [], after[len(before) :]

    # extension 100 (flows/main.yaml): the caller presses 1 for sales
    stack.call("100", "--digits", "1", "--first-digit-after-s", "4")
    flow, outcome, path, end_node, _ = stack.record(CALLER)
    assert flow == "main"
    assert json.loads(str(path)) == ["welcome", "menu", "sales", "goodbye"], path
    assert (outcome, end_node) == ("self_service", "goodbye")

    # extension 300 (flows/survey.yaml, the feedback line): three answers on the record
    stack.call(
        "300",
        "--digits",
        "5,1,4",
        "--first-digit-after-s",
        "10",
        "--digit-gap-s",
        "6",
        caller=SURVEY_CALLER,
    )
    flow, outcome, path, end_node, survey = stack.record(SURVEY_CALLER)
    assert (flow, outcome, end_node) == ("survey", "self_service", "goodbye"), path
    answers = json.loads(str(survey))
    print(f"survey record: {answers}")
    assert answers["status"] == "completed", answers
    given = {a["question"]: a["value"] for a in answers["answers"]}
    assert given == {"satisfied": 5, "solved": 1, "recommend": 4}, answers

    # still healthy after the calls
    assert stack.podman("healthcheck", "run", stack.container("ivr")).returncode == 0
    assert stack.health("ivr") == "healthy"
