"""Speech models loaded once per directory and shared by every engine and thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ModelCache:
    """Loads each model once (by resolved path) and shares it; safe from many threads.

    Loading is slow (seconds), so concurrent first requests for one path wait for a single
    load instead of loading twice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, Any] = {}
        self._loading: dict[str, threading.Lock] = {}

    def get(self, path: str, load: Callable[[str], Any]) -> Any:
        """The model at ``path``, loading it with ``load(path)`` the first time."""
        key = str(Path(path).resolve())
        with self._lock:
            if key in self._models:
                return self._models[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = load(key)
            with self._lock:
                self._models[key] = model
                self._loading.pop(key, None)
            return model


MODELS = ModelCache()
