"""Phone evidence for pocketsphinx's doubtful decodes: what a free phone decode heard.

A grammar decode forces the audio onto a menu phrase; a decode of the same audio over all
phones (pocketsphinx's ``allphone`` search with the model's phone language model, ~55 ms)
says which phones were actually there. Three measures (:func:`phone_evidence`): the edit
distance from the phones heard to the decoded phrase's, over the whole utterance and inside
the phrase's words, and how many phones were heard outside the words. They feed a second
logistic model (:data:`ivr.speech.sphinx_score.PHONE_CALIBRATION`), and only for decodes the
first model leaves in doubt (:func:`needs_phones`): ~28 % of the generated sets' decodes.

Round 5 (issue 14, English; fitted and chosen on dev; "curve": in-grammar kept where 70 / 80 /
90 % of out-of-grammar speech is rejected; calibration set, test split, ``stt_bench.py``):

- Kept: this evidence, for confidences from 0.01 to 0.97 (:data:`PHONE_BAND`). Thresholds 0.12
  / 0.81 chosen on dev (98.6 % kept / 90.6 % rejected). Calibration curve 76 / 67 / 49 -> 78 /
  71 / 50 %; test 90.2 / 84.7 -> 90.6 / 87.5 %, 82.5 -> 83.8 % kept at 90 %; stt_bench 89.7 /
  87.5 -> 89.7 / 88.9 %, 86.3 -> 88.0 % at 90 %. The same with the evidence on every decode;
  bands 0.02..0.95 or 0.03..0.9 did as well on test and stt_bench but less on the calibration
  set (49 % at 90 %); a model fitted only on the band's dev decodes (55-142) did no better.
  Bands ending at 0.3-0.6 (9-17 % decoded twice) lose the gain: the out-of-grammar decodes it
  rejects scored 0.6-0.97 before (stt_bench back to 87.5 % rejected).
  Live utterances: "sales" 0.70 -> 0.89, "no" 0.90 -> 0.92, the rest unchanged. pocketsphinx
  holds the GIL while it decodes (two threads took twice one's time), so the engine keeps one
  phone decoder, made on first need (~90 ms): stt_bench's p95 at 10 streams 83 ms (``--quick``,
  its first 20 results with decoders still being made: 198 ms; was 30-51 ms); one decoder per
  recogniser instead: 364 ms in ``--quick``.
- Keyword spotting (``add_kws`` over the menu's phrases, ~33 ms a decode, no better): its
  detection score depends on ``kws_plp`` far more than on ``kws_threshold`` (1e-30..1e-300 gave
  the same detections). At the default ``kws_plp`` 0.1 the phone loop beats multi-word phrases
  ("lost card" was never detected) and the grammar decode's choice was detected for 84 % of
  right and 65 % of wrong dev decodes, 88 / 92 % on the calibration set. At 1e-20 every
  right dev decode's choice was detected (95 % of wrong ones); its best detection score per
  frame (AUC right vs wrong 0.87 dev / 0.82 calibration; the path score per frame: 0.94 /
  0.90) lifts the calibration curve to 77 / 71 / 56 % but stt_bench falls to 84 % at 90 % and
  test to 80 %; with the margin to other phrases' detections, detections per second, or all
  seven measures (also at 1e-10, 0.1, and with a stronger L2) stt_bench stays at 81-86 %. As a
  rule (reject when the choice's detection per frame is below the lowest of dev's right
  decodes): stt_bench 85.5 % kept / 88.9 % rejected, test 85.9 / 85.1 %, below the curve.
  Spotting the 100 ``grammar.GARBAGE_EN`` words as well (41 ms): the best garbage detection
  inside the phrase, its margin to the choice's, garbage per second: AUC 0.44-0.85 / 0.62-0.71,
  stt_bench 80-85 % at 90 %.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

# The first model's confidences the phone evidence is sought for: outside them both models
# give the same verdict at the chosen thresholds.
PHONE_BAND = (0.01, 0.97)
PHONE_FEATURES = (
    "phones_distance",  # edit distance, phones heard vs the phrase's, over the utterance
    "phones_distance_inside",  # the same, only phones heard inside the phrase's words
    "phones_outside",  # phones heard outside the words, per phone of the phrase
)


def needs_phones(confidence: float) -> bool:
    """Whether a decode with this (first-model) confidence is worth a phone decode."""
    return PHONE_BAND[0] <= confidence <= PHONE_BAND[1]


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two phone sequences.

    >>> edit_distance("R IY P IY T".split(), "R IH P IY T S".split())
    2
    """
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def phone_evidence(
    heard: Sequence[tuple[str, int, int]],
    words: Sequence[tuple[int, int]],
    expected: Sequence[str],
) -> tuple[float, float, float]:
    """The :data:`PHONE_FEATURES` of a decode: ``heard`` the phone decode's phones with their
    first and last frames (silences and fillers left out), ``words`` the grammar decode's word
    frame spans, ``expected`` the decoded phrase's phones (from the dictionary).

    >>> phone_evidence([("N", 0, 5), ("OW", 6, 12), ("S", 20, 25)], [(0, 14)], ["N", "OW"])
    (0.3333333333333333, 0.0, 0.5)
    """
    phones = [p for p, _, _ in heard]
    inside = [p for p, a, b in heard if any(x <= (a + b) / 2 <= y for x, y in words)]
    return (
        edit_distance(phones, expected) / max(len(expected), len(phones), 1),
        edit_distance(inside, expected) / max(len(expected), len(inside), 1),
        (len(phones) - len(inside)) / max(len(expected), 1),
    )


def phone_lm_path() -> str:
    """The wheel model's phone language model, for a decoder's ``allphone`` option."""
    from pocketsphinx import get_model_path

    return os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin")


class PhoneDecoder:
    """A pocketsphinx ``allphone`` decoder (the model's phone language model, 16 kHz)."""

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder  # built with the ``allphone`` option (phone_lm_path())

    def phones(self, pcm16k: bytes) -> list[tuple[str, int, int]]:
        """The phones heard in ``pcm16k`` with their first and last frames, without silences
        and fillers (``SIL``, ``+NSN+``...)."""
        d = self.decoder
        d.reinit_feat()  # a fresh noise estimate, as for the grammar decode
        d.start_utt()
        d.process_raw(pcm16k, False, True)
        d.end_utt()
        return [
            (str(s.word), int(s.start_frame), int(s.end_frame))
            for s in (d.seg() or ())
            if s.word != "SIL" and not str(s.word).startswith("+")
        ]
