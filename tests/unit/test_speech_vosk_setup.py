"""The model directory Vosk loads: dither off and a wider lattice beam, through a shadow
directory of links; the model's own files are never written."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.speech.vosk_setup import LATTICE_BEAM, option, overrides, tuned_model_dir


def model(root: Path, mfcc: str, conf: str = "--beam=10.0\n--lattice-beam=2.0\n") -> Path:
    (root / "am").mkdir(parents=True)
    (root / "am" / "final.mdl").write_bytes(b"model")
    (root / "conf").mkdir()
    (root / "conf" / "mfcc.conf").write_text(mfcc)
    (root / "conf" / "model.conf").write_text(conf)
    (root / "conf" / "other.conf").write_text("--x=1\n")
    return root


def test_option_reads_the_last_value() -> None:
    assert option("--dither=1\n  --dither=0.5\n", "dither") == "0.5"
    assert option("--dithering=1\n", "dither") is None


def test_a_shadow_turns_dither_off_and_widens_the_lattice(tmp_path: Path) -> None:
    source = model(tmp_path / "vosk-model-x", "--num-ceps=40\n")
    shadow = Path(tuned_model_dir(str(source), cache_dir=tmp_path / "cache"))
    assert shadow != source and shadow.parent == tmp_path / "cache"
    assert option((shadow / "conf/mfcc.conf").read_text(), "dither") == "0.0"
    assert option((shadow / "conf/mfcc.conf").read_text(), "num-ceps") == "40"
    assert float(option((shadow / "conf/model.conf").read_text(), "lattice-beam") or 0) == (
        LATTICE_BEAM
    )
    assert (shadow / "am").is_symlink() and (shadow / "am/final.mdl").read_bytes() == b"model"
    assert (shadow / "conf/other.conf").resolve() == (source / "conf/other.conf")
    assert (source / "conf/mfcc.conf").read_text() == "--num-ceps=40\n"  # untouched
    # made once: a second call reuses it
    assert tuned_model_dir(str(source), cache_dir=tmp_path / "cache") == str(shadow)
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_a_model_that_needs_nothing_is_loaded_as_it_is(tmp_path: Path) -> None:
    source = model(tmp_path / "m", "--dither=1.0\n", "--lattice-beam=6.0\n")
    assert overrides("--dither=1.0\n", "--lattice-beam=6.0\n") == {}
    assert tuned_model_dir(str(source), cache_dir=tmp_path / "cache") == str(source)
    bare = tmp_path / "bare"
    bare.mkdir()
    assert tuned_model_dir(str(bare), cache_dir=tmp_path / "cache") == str(bare)


def test_an_unwritable_cache_falls_back_to_the_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = model(tmp_path / "m", "--num-ceps=40\n")
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert tuned_model_dir(str(source), cache_dir=blocked / "cache") == str(source)
    assert "cannot shadow" in caplog.text
