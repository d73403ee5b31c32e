"""The call store's SQLite schema: its migrations, applied in order at open, one transaction
each, and the write-transaction helper the store uses.

``MIGRATIONS[n]`` takes a database from schema version ``n`` (SQLite's ``user_version``) to
``n + 1``. To change the schema, append a function (never edit a released one);
``SCHEMA_VERSION`` follows.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from ivr.errors import StoreError
from ivr.store.sql import Connection, SqliteDialect

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "immediate", "migrate"]

SCHEMA_V1 = (
    """
    CREATE TABLE calls (
        call_id         TEXT PRIMARY KEY,
        flow            TEXT NOT NULL,
        flow_version    TEXT NOT NULL,
        caller          TEXT NOT NULL DEFAULT '',
        dnis            TEXT NOT NULL DEFAULT '',
        started_at      REAL NOT NULL,
        ended_at        REAL,
        duration_s      REAL,
        language        TEXT NOT NULL DEFAULT '',
        path            TEXT NOT NULL DEFAULT '[]',
        inputs          TEXT NOT NULL DEFAULT '[]',
        outcome         TEXT CHECK (outcome IS NULL OR outcome IN
                            ('self_service', 'transferred', 'abandoned', 'error')),
        end_node        TEXT,
        transfer_target TEXT,
        error           TEXT,
        variables       TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX calls_started_at ON calls (started_at)",
    "CREATE INDEX calls_flow_started_at ON calls (flow, started_at)",
    "CREATE INDEX calls_outcome_started_at ON calls (outcome, started_at)",
)


# The same text on both engines (PostgreSQL's DOUBLE PRECISION is REAL's twin).
NODES_TABLE = """
    CREATE TABLE nodes (
        id         TEXT PRIMARY KEY,   -- node.id: host:port unless configured
        version    TEXT NOT NULL,      -- the ivr version it runs
        started_at REAL NOT NULL,
        beat_at    REAL NOT NULL,      -- its last heartbeat (Unix time)
        calls      INTEGER NOT NULL DEFAULT 0  -- FastAGI calls it had then
    )"""


# Contact-centre features (schema v8). Webhook events wait in an outbox until a receiver has
# them (the call path only inserts a row); messages are the caller's recordings.
WEBHOOK_OUTBOX_TABLE = """
    CREATE TABLE webhook_outbox (
        id          INTEGER PRIMARY KEY,
        event       TEXT NOT NULL,               -- call.ended, survey.answered, ...
        call_id     TEXT NOT NULL DEFAULT '',    -- the call it is about ('' for none)
        payload     TEXT NOT NULL,               -- the JSON body, signed when it is sent
        created_at  REAL NOT NULL,
        status      TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sent', 'failed')),
        attempts    INTEGER NOT NULL DEFAULT 0,
        next_at     REAL NOT NULL,               -- when the next attempt is due
        last_error  TEXT NOT NULL DEFAULT '',
        sent_at     REAL
    )"""
MESSAGES_TABLE = """
    CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        call_id     TEXT NOT NULL,
        flow        TEXT NOT NULL,
        node        TEXT NOT NULL,               -- the record node that took it
        caller      TEXT NOT NULL DEFAULT '',
        file        TEXT NOT NULL,               -- the WAV, under the recordings directory
        duration_s  REAL NOT NULL,
        language    TEXT NOT NULL DEFAULT '',
        transcript  TEXT NOT NULL DEFAULT '',    -- '' when no recogniser has the language
        created_at  REAL NOT NULL,
        heard_at    REAL                         -- marked heard in the dashboard
    )"""


def _migrate_0_to_1(conn: Connection) -> None:
    for statement in SCHEMA_V1:
        conn.execute(statement)


def _migrate_1_to_2(conn: Connection) -> None:
    """Agent queues and post-call surveys: one JSON column each (NULL when absent)."""
    conn.execute("ALTER TABLE calls ADD COLUMN queue TEXT")
    conn.execute("ALTER TABLE calls ADD COLUMN survey TEXT")


def _migrate_2_to_3(conn: Connection) -> None:
    """Outbound calls (callbacks, outbound surveys, campaigns) and the opt-out list."""
    conn.execute("""
        CREATE TABLE outbound (
            id            INTEGER PRIMARY KEY,
            kind          TEXT NOT NULL CHECK (kind IN ('callback', 'survey', 'campaign')),
            call_id       TEXT NOT NULL,      -- the call it belongs to (campaign:<name>:<number>)
            flow          TEXT NOT NULL,
            target        TEXT NOT NULL,      -- the survey name or the queue node id
            number        TEXT NOT NULL,
            channel       TEXT NOT NULL,      -- dial string, built and checked when booked
            caller_id     TEXT NOT NULL DEFAULT '',
            due_at        REAL NOT NULL,
            attempts      INTEGER NOT NULL DEFAULT 0,
            max_attempts  INTEGER NOT NULL,
            retry_after_s REAL NOT NULL,
            status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                              ('pending', 'dialing', 'answered', 'done', 'failed')),
            last_result   TEXT NOT NULL DEFAULT '',
            created_at    REAL NOT NULL,
            updated_at    REAL NOT NULL,
            variables     TEXT NOT NULL DEFAULT '{}',  -- for the flow (campaign list columns)
            UNIQUE (kind, call_id)
        )""")
    conn.execute("""
        CREATE TABLE campaigns (
            name           TEXT PRIMARY KEY,
            flow           TEXT NOT NULL,
            rate           REAL NOT NULL,     -- calls started per second, at most
            max_concurrent INTEGER NOT NULL,
            hours          TEXT NOT NULL DEFAULT '',  -- JSON of a flow `hours: open:` map
            timezone       TEXT NOT NULL DEFAULT 'UTC',
            state          TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
            created_at     REAL NOT NULL
        )""")
    conn.execute("CREATE INDEX outbound_due ON outbound (status, due_at)")
    conn.execute("CREATE TABLE opt_out (number TEXT PRIMARY KEY, at REAL NOT NULL)")


_OUTBOUND_V4 = """
    CREATE TABLE outbound_v4 (
        id             INTEGER PRIMARY KEY,
        kind           TEXT NOT NULL CHECK (kind IN ('callback', 'survey', 'campaign')),
        call_id        TEXT NOT NULL,     -- the call it belongs to (campaign:<name>:<number>)
        flow           TEXT NOT NULL,
        target         TEXT NOT NULL,     -- the survey name, queue node id or campaign name
        number         TEXT NOT NULL,
        channel        TEXT NOT NULL,     -- dial string, built and checked when booked
        caller_id      TEXT NOT NULL DEFAULT '',
        due_at         REAL NOT NULL,
        attempts       INTEGER NOT NULL DEFAULT 0,
        max_attempts   INTEGER NOT NULL,
        retry_after_s  REAL NOT NULL,
        status         TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                           ('pending', 'dialing', 'answered', 'done', 'failed', 'held')),
        last_result    TEXT NOT NULL DEFAULT '',
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL,
        variables      TEXT NOT NULL DEFAULT '{}',  -- for the flow (campaign list columns)
        -- the calling hours (JSON, '' = any hour) and limit a callback or survey was booked
        -- with; NULL for campaign calls (the campaign's) and for jobs booked before v4
        hours          TEXT,
        max_concurrent INTEGER,
        reason         TEXT NOT NULL DEFAULT '',   -- why the job is held
        UNIQUE (kind, call_id)
    )"""
_OUTBOUND_V3_COLUMNS = (
    "id, kind, call_id, flow, target, number, channel, caller_id, due_at, attempts,"
    " max_attempts, retry_after_s, status, last_result, created_at, updated_at, variables"
)


def _migrate_3_to_4(conn: Connection) -> None:
    """Outbound jobs keep the rules they were booked with, and may be ``held`` (their flow or
    node is gone) with a reason. A CHECK cannot be changed in place: the table is rebuilt."""
    conn.execute(_OUTBOUND_V4)
    conn.execute(
        f"INSERT INTO outbound_v4 ({_OUTBOUND_V3_COLUMNS})"
        f" SELECT {_OUTBOUND_V3_COLUMNS} FROM outbound"
    )
    conn.execute("DROP TABLE outbound")  # and its index on (status, due_at)
    conn.execute("ALTER TABLE outbound_v4 RENAME TO outbound")
    # The dialer's selection: due jobs per kind and target, oldest first. The old index is
    # not kept: the planner took it for "due callbacks and surveys" and walked every
    # pending campaign row to find them.
    conn.execute(
        "CREATE INDEX outbound_target_due ON outbound (status, kind, flow, target, due_at)"
    )


def _migrate_4_to_5(conn: Connection) -> None:
    """The number policy's daily limits (ivr.flow.numbers): each job says which caller
    booked it, and callbacks and surveys of the last 24 h are found by (kind, created_at)
    without reading a campaign's rows."""
    conn.execute("ALTER TABLE outbound ADD COLUMN booked_by TEXT NOT NULL DEFAULT ''")
    conn.execute("CREATE INDEX outbound_kind_created ON outbound (kind, created_at)")


def _migrate_5_to_6(conn: Connection) -> None:
    """Several nodes on one database: each call and each outbound attempt says which node
    has it (so a node restarting recovers only its own), and each node reports itself."""
    conn.execute("ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE outbound ADD COLUMN node TEXT NOT NULL DEFAULT ''")
    conn.execute(NODES_TABLE)


def _migrate_6_to_7(conn: Connection) -> None:
    """Scale-out, second step: a call in progress keeps where to resume it on another node
    (``resume``, JSON, written with each checkpoint), each call names the Asterisk box that
    carried it (``box``), and a campaign's next call start is shared by every node dialling
    it (``next_start_at``), so its rate holds across nodes."""
    conn.execute("ALTER TABLE calls ADD COLUMN resume TEXT")
    conn.execute("ALTER TABLE calls ADD COLUMN box TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE campaigns ADD COLUMN next_start_at REAL NOT NULL DEFAULT 0")


def _migrate_7_to_8(conn: Connection) -> None:
    """Contact-centre features: the webhook outbox, left messages, and the recording of a
    call's agent leg (``calls.recording``, a file under the recordings directory)."""
    conn.execute(WEBHOOK_OUTBOX_TABLE)
    conn.execute("CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_at)")
    conn.execute(MESSAGES_TABLE)
    conn.execute("CREATE INDEX messages_created ON messages (created_at)")
    conn.execute("ALTER TABLE calls ADD COLUMN recording TEXT NOT NULL DEFAULT ''")


# Ops experience (schema v9): every published flow version, kept for history and rollback.
FLOW_VERSIONS_TABLE = """
    CREATE TABLE flow_versions (
        id           INTEGER PRIMARY KEY,
        flow         TEXT NOT NULL,
        version      TEXT NOT NULL,              -- the flow's content hash (calls.flow_version)
        file         TEXT NOT NULL,              -- where it was loaded from
        content      TEXT NOT NULL,              -- the YAML text as published
        published_at REAL NOT NULL,
        published_by TEXT NOT NULL DEFAULT '',   -- who asked (the reload request), '' at start
        reason       TEXT NOT NULL DEFAULT '',   -- start, reload, rollback to <version>, ...
        node         TEXT NOT NULL DEFAULT ''    -- the node that published it
    )"""
_CALLS_V9 = """
    CREATE TABLE calls_v9 (
        call_id         TEXT PRIMARY KEY,
        flow            TEXT NOT NULL,
        flow_version    TEXT NOT NULL,
        caller          TEXT NOT NULL DEFAULT '',
        dnis            TEXT NOT NULL DEFAULT '',
        started_at      REAL NOT NULL,
        ended_at        REAL,
        duration_s      REAL,
        language        TEXT NOT NULL DEFAULT '',
        path            TEXT NOT NULL DEFAULT '[]',
        inputs          TEXT NOT NULL DEFAULT '[]',
        outcome         TEXT CHECK (outcome IS NULL OR outcome IN
                            ('self_service', 'failed_in_ivr', 'transferred', 'abandoned',
                             'error')),
        end_node        TEXT,
        transfer_target TEXT,
        error           TEXT,
        variables       TEXT NOT NULL DEFAULT '{}',
        queue           TEXT,
        survey          TEXT,
        node            TEXT NOT NULL DEFAULT '',
        resume          TEXT,
        box             TEXT NOT NULL DEFAULT '',
        recording       TEXT NOT NULL DEFAULT '',
        path_at         TEXT NOT NULL DEFAULT '[]'  -- seconds from the start to each path node
    )"""
_CALLS_V8_COLUMNS = (
    "call_id, flow, flow_version, caller, dnis, started_at, ended_at, duration_s, language,"
    " path, inputs, outcome, end_node, transfer_target, error, variables, queue, survey, node,"
    " resume, box, recording"
)
CALLS_INDEXES = (
    "CREATE INDEX calls_started_at ON calls (started_at)",
    "CREATE INDEX calls_flow_started_at ON calls (flow, started_at)",
    "CREATE INDEX calls_outcome_started_at ON calls (outcome, started_at)",
)


def _migrate_8_to_9(conn: Connection) -> None:
    """Ops experience: a call the flow ends after the caller failed its menus is
    ``failed_in_ivr``, not self-service (a CHECK cannot be changed in place: ``calls`` is
    rebuilt); each call keeps when it entered each node (``path_at``, for time per node);
    every published flow version is kept (``flow_versions``)."""
    conn.execute(_CALLS_V9)
    conn.execute(
        f"INSERT INTO calls_v9 ({_CALLS_V8_COLUMNS}) SELECT {_CALLS_V8_COLUMNS} FROM calls"
    )
    conn.execute("DROP TABLE calls")  # and its indexes
    conn.execute("ALTER TABLE calls_v9 RENAME TO calls")
    for statement in CALLS_INDEXES:
        conn.execute(statement)
    conn.execute(FLOW_VERSIONS_TABLE)
    conn.execute("CREATE INDEX flow_versions_flow ON flow_versions (flow, id)")


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (
    _migrate_0_to_1,
    _migrate_1_to_2,
    _migrate_2_to_3,
    _migrate_3_to_4,
    _migrate_4_to_5,
    _migrate_5_to_6,
    _migrate_6_to_7,
    _migrate_7_to_8,
    _migrate_8_to_9,
)
SCHEMA_VERSION = len(MIGRATIONS)
_SQLITE = SqliteDialect()


def immediate(conn: Connection) -> AbstractContextManager[None]:
    """One SQLite write transaction (the connection is in autocommit mode): commit, or roll
    back."""
    return _SQLITE.transaction(conn)


def migrate(conn: Connection, path: str) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, one transaction per step."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this ivr supports "
            f"({SCHEMA_VERSION}); upgrade ivr or use another database file"
        )
    for step in range(version, SCHEMA_VERSION):
        with immediate(conn):
            MIGRATIONS[step](conn)
            conn.execute(f"PRAGMA user_version = {step + 1}")
