"""The flows a running server serves, reloaded safely while calls go on.

:class:`FlowRegistry` holds the current :class:`~ivr.flow.library.FlowLibrary` and, per flow,
its last versions. :meth:`FlowRegistry.reload` loads the whole directory again (in a worker
thread, with the same :func:`~ivr.flow.library.load_library` as ``ivr validate``) and swaps the
result in at once. The rules:

- **a file with errors keeps its previous version serving**; the other files update. Its
  errors are reported (``file:line:col``) in the log, in :attr:`FlowRegistry.errors` and so in
  the admin API, until the file is fixed. A broken file never loaded before stays out.
- **a flow whose file is gone is removed**: new calls for it get the dialplan fallback
  (``IVR_RESULT=unknown_flow``), exactly as for a name that never existed; calls already in
  it finish on the version they started with. Its version history stays readable.
- **a missing directory changes nothing**: the reload fails (result ``error``) and every flow
  keeps serving (a deployment that replaces the directory does not empty the server).
- **calls in progress keep their flow**: a :class:`~ivr.runtime.interpreter.CallRun` holds the
  :class:`~ivr.flow.model.Flow` object (and the sub-flow mapping) it started with; the library
  is replaced, never changed in place, so only new calls see a new version. Records carry
  ``flow_version``.
- reloads are serialized (one :class:`asyncio.Lock`); the watcher polls the files' mtimes
  every ``poll_s`` seconds and reloads once a change has stayed still for one poll (an editor
  or ``git checkout`` half-way through writing is not loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ivr.clock import Clock, system_clock
from ivr.errors import FlowError
from ivr.flow.library import FlowLibrary, flow_files, load_library, subflow_errors
from ivr.flow.model import Flow
from ivr.tasks import Background

log = logging.getLogger("ivr.flows")

KEEP_VERSIONS = 20
ReloadStatus = Literal["ok", "partial", "error"]
Signature = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class FlowVersion:
    """One version of a flow the server has served."""

    version: str
    loaded_at: float  # Unix time this version was first loaded
    file: str
    nodes: int
    source: str | None = None  # the YAML text of this version (None: changed before read)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "loaded_at": self.loaded_at}


@dataclass(frozen=True)
class ReloadResult:
    """What one reload did. ``result``: ``ok`` (every file loaded), ``partial`` (some files
    have errors and kept their previous version, or stayed out), ``error`` (nothing changed:
    the directory is missing or loading failed)."""

    result: ReloadStatus
    at: float
    reason: str = ""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # flows left at their previous version
    errors: list[FlowError] = field(default_factory=list)
    message: str = ""
    initial: bool = False
    by: str = ""  # who asked for it ("": the watcher, a signal, start-up)

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "at": self.at,
            "reason": self.reason,
            "by": self.by,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "kept": self.kept,
            "errors": [error_dict(e) for e in self.errors],
            "message": self.message,
        }


def error_dict(error: FlowError) -> dict[str, Any]:
    """A flow error as JSON: file, line, col, node, message."""
    return {
        "file": error.file,
        "line": error.line,
        "col": error.col,
        "node": error.node,
        "message": error.message,
    }


@dataclass
class _Loaded:
    library: FlowLibrary
    signature: Signature
    sources: dict[str, str]


class FlowRegistry:
    """The current flows plus their version history; see the module docstring for the rules.

    ``prepare`` runs with the new and changed flows before they are swapped in (the server
    renders their text prompts there); ``on_reload`` is told every result, and
    ``on_publish`` (set once there is somewhere to keep versions) is awaited, inside the
    reload's lock, with each result that added or changed a flow.
    """

    def __init__(
        self,
        flows_dir: str | os.PathLike[str],
        prompts_dir: str | Path | None = None,
        *,
        keep: int = KEEP_VERSIONS,
        poll_s: float = 2.0,
        clock: Clock = system_clock,
        prepare: Callable[[list[Flow]], Awaitable[None]] | None = None,
        on_reload: Callable[[ReloadResult], None] | None = None,
    ) -> None:
        self.flows_dir = Path(flows_dir)
        self.prompts_dir = Path(prompts_dir) if prompts_dir is not None else None
        self.keep = keep
        self.poll_s = poll_s
        self.clock = clock
        self.prepare = prepare
        self.on_reload = on_reload
        self.on_publish: Callable[[ReloadResult], Awaitable[None]] | None = None
        # checks a loaded library before it is applied, in the reload's worker thread: a flow
        # it takes out counts as a file with errors (ivr.flowtests.gate: failing tests)
        self.vet: Callable[[FlowLibrary], FlowLibrary] | None = None
        self.library = FlowLibrary()  # replaced by each reload, never changed in place
        self.last: ReloadResult | None = None
        self._history: dict[str, deque[FlowVersion]] = {}
        self._signature: Signature | None = None
        self._lock = asyncio.Lock()
        self._watcher = Background("flow-watcher")

    # --- reading -------------------------------------------------------------------------

    @property
    def flows(self) -> Mapping[str, Flow]:
        """The flows new calls get, by name."""
        return self.library.flows

    @property
    def errors(self) -> list[FlowError]:
        """Errors of the files that are not serving their current text."""
        return self.library.errors

    def get(self, name: str) -> Flow | None:
        return self.library.get(name)

    def versions(self, name: str) -> list[FlowVersion]:
        """The last versions of ``name``, oldest first (the current one last)."""
        return list(self._history.get(name, ()))

    def current(self, name: str) -> FlowVersion | None:
        """The serving version of ``name`` (``None`` when it is not loaded)."""
        flow = self.library.get(name)
        history = self._history.get(name)
        if flow is None or not history:
            return None
        for entry in reversed(history):
            if entry.version == flow.version:
                return entry
        return None

    # --- loading -------------------------------------------------------------------------

    async def reload(self, reason: str = "request", by: str = "") -> ReloadResult:
        """Load the directory again and swap the result in (serialized with other reloads);
        ``by``: who asked."""
        async with self._lock:
            initial = self.last is None
            try:
                loaded = await asyncio.to_thread(self._load)
                result = await self._apply(loaded, reason, initial, by)
            except Exception as exc:  # a missing directory, a bug: keep what serves
                message = (
                    str(exc)
                    if isinstance(exc, FileNotFoundError | FlowError)
                    else f"{type(exc).__name__}: {exc}"
                )
                log.error(
                    "flow reload (%s) failed, every flow keeps serving: %s",
                    reason,
                    message,
                    exc_info=not isinstance(exc, FileNotFoundError),
                )
                result = ReloadResult(
                    "error",
                    self.clock(),
                    reason,
                    message=message,
                    errors=list(self.library.errors),
                    initial=initial,
                    by=by,
                )
            self.last = result
            if self.on_publish is not None and (result.added or result.changed):
                try:  # in the lock: versions are kept in the order they were published
                    await self.on_publish(result)
                except Exception:
                    log.exception("on_publish hook failed")
        if self.on_reload is not None:
            try:
                self.on_reload(result)
            except Exception:
                log.exception("on_reload hook failed")
        return result

    def _load(self) -> _Loaded:
        """Blocking: the directory's signature, its library, and the loaded flows' text."""
        if not self.flows_dir.exists():
            raise FileNotFoundError(f"{self.flows_dir}: the flows directory is missing")
        signature = self.signature()  # before loading: a change meanwhile reloads again
        library = load_library([self.flows_dir], self.prompts_dir)
        if self.vet is not None:
            library = self.vet(library)
        sources: dict[str, str] = {}
        for name, flow in library.flows.items():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = Path(flow.file).read_text(encoding="utf-8")
                digest = hashlib.sha256(text.encode()).hexdigest()[:12]
                if flow.version.rsplit("+", 1)[-1] == digest:  # the text that was loaded
                    sources[name] = text
        return _Loaded(library, signature, sources)

    def signature(self) -> Signature:
        """Blocking: name, mtime, size and inode of every flow file (what the watcher polls)."""
        out: list[tuple[str, int, int, int]] = []
        for file in flow_files([self.flows_dir]) if self.flows_dir.exists() else []:
            try:
                st = file.stat()
            except OSError:
                continue
            out.append((str(file), st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(sorted(out))

    async def _apply(
        self, loaded: _Loaded, reason: str, initial: bool, by: str = ""
    ) -> ReloadResult:
        new = loaded.library
        loaded_files = {flow.file for flow in new.flows.values()}
        file_errors = [e for e in new.errors if e.file not in loaded_files]
        bad_files = {e.file for e in file_errors}
        old = self.library.flows
        merged = dict(new.flows)
        kept = sorted(
            name for name, flow in old.items() if name not in merged and flow.file in bad_files
        )
        for name in kept:
            merged[name] = old[name]
        errors = sorted(file_errors + subflow_errors(merged), key=lambda e: (e.file, e.line))
        added = sorted(set(merged) - set(old))
        removed = sorted(set(old) - set(merged))
        changed = sorted(n for n in set(merged) & set(old) if merged[n].version != old[n].version)
        fresh = [merged[n] for n in (*added, *changed)]
        if self.prepare is not None and fresh:
            await self.prepare(fresh)
        now = self.clock()
        for name in (*added, *changed):
            flow = merged[name]
            history = self._history.setdefault(name, deque(maxlen=self.keep))
            if not history or history[-1].version != flow.version:
                history.append(
                    FlowVersion(
                        flow.version, now, flow.file, len(flow.nodes), loaded.sources.get(name)
                    )
                )
        self.library = FlowLibrary(flows=merged, errors=errors)  # the swap: new calls only
        self._signature = loaded.signature
        result = ReloadResult(
            "partial" if errors else "ok",
            now,
            reason,
            added,
            changed,
            removed,
            kept,
            errors,
            initial=initial,
            by=by,
        )
        self._log(result)
        return result

    def _log(self, result: ReloadResult) -> None:
        for error in result.errors:
            log.error("flow not loaded: %s", error)
        for name in result.kept:
            flow = self.library.flows[name]
            log.warning(
                "flow %s: %s has errors, so version %s keeps serving", name, flow.file, flow.version
            )
        for name in result.removed:
            log.warning(
                "flow %s removed (its file is gone): new calls for it go to the "
                "dialplan fallback; calls in it finish on their version",
                name,
            )
        if result.initial:
            log.info(
                "flows: %s",
                ", ".join(f"{f.name}@{f.version}" for f in self.library.flows.values()) or "none",
            )
        elif result.added or result.changed:
            log.info(
                "flows reloaded (%s): %s",
                result.reason,
                ", ".join(
                    f"{n}@{self.library.flows[n].version}" for n in (*result.added, *result.changed)
                ),
            )

    # --- watching ------------------------------------------------------------------------

    def start_watching(self) -> None:
        """Poll the directory every ``poll_s`` seconds and reload when it changed."""
        if not self._watcher.running and self.poll_s > 0:
            self._watcher.start(self._watch())

    async def close(self) -> None:
        """Stop the watcher (a reload in progress is cancelled; the flows stay)."""
        await self._watcher.close()

    async def _watch(self) -> None:
        previous: Signature | None = None
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                now = await asyncio.to_thread(self.signature)
            except Exception:
                log.exception("cannot read the flows directory %s", self.flows_dir)
                continue
            # reload once the change has stayed still for one poll (no half-written files)
            if now != self._signature and now == previous:
                result = await self.reload("file change")
                if result.result == "error":
                    self._signature = now  # tried once; wait for the next change
            previous = now
