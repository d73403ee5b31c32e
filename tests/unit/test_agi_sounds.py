"""Prompt lengths read from the sound files (the deadline of a playback follows them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.sound_files import write_wav

from ivr.asterisk.agi.sounds import SoundLengths


def test_wav_length_from_its_header(tmp_path: Path) -> None:
    write_wav(tmp_path / "tts" / "en" / "disclaimer.wav", 42.5)
    write_wav(tmp_path / "wide.wav16", 2.0, rate=16000)
    lengths = SoundLengths(tmp_path)
    assert lengths.seconds("tts/en/disclaimer") == pytest.approx(42.5)
    assert lengths.seconds("wide") == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("ext", "size", "seconds"),
    [("ulaw", 80000, 10.0), ("alaw", 8000, 1.0), ("sln", 32000, 2.0), ("gsm", 1650 * 4, 4.0)],
)
def test_headerless_formats_from_their_size(
    tmp_path: Path, ext: str, size: int, seconds: float
) -> None:
    (tmp_path / f"hold.{ext}").write_bytes(b"\0" * size)
    assert SoundLengths(tmp_path).seconds("hold") == pytest.approx(seconds)


def test_unknown_when_missing_unreadable_or_no_directory(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF junk")
    lengths = SoundLengths(tmp_path)
    assert lengths.seconds("nothing-here") is None
    assert lengths.seconds("broken") is None
    assert SoundLengths(None).seconds("broken") is None


def test_a_replaced_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "greeting.wav"
    write_wav(path, 1.0)
    lengths = SoundLengths(tmp_path, recheck_s=0.0)
    assert lengths.seconds("greeting") == pytest.approx(1.0)
    write_wav(path, 3.0)
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
    assert lengths.seconds("greeting") == pytest.approx(3.0)


def test_a_known_length_is_trusted_for_recheck_s_without_a_stat(tmp_path: Path) -> None:
    path = tmp_path / "greeting.wav"
    write_wav(path, 1.0)
    lengths = SoundLengths(tmp_path, recheck_s=3600.0)
    assert lengths.seconds("greeting") == pytest.approx(1.0)
    write_wav(path, 3.0)
    os.utime(path, ns=(1, 1))
    assert lengths.seconds("greeting") == pytest.approx(1.0)  # not looked at again yet


def test_a_file_that_appears_later_is_found(tmp_path: Path) -> None:
    lengths = SoundLengths(tmp_path, miss_ttl_s=0.0)
    assert lengths.seconds("late") is None
    write_wav(tmp_path / "late.wav", 1.5)
    assert lengths.seconds("late") == pytest.approx(1.5)
