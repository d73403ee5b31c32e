""" "Did you mean": the names closest to a misspelt one (node targets, keys, node kinds).

Close means one or two edits apart, letter case aside (``mian`` -> ``main``, ``nxt`` ->
``next``, ``playy`` -> ``play``); then names that start like it (``fetch`` ->
``fetch_balance``). :class:`Suggester` indexes the names once, each name under itself and
every way to delete one of its letters, so that a lookup costs a few dictionary probes however
many names there are (8,000 dangling gotos must not scan 8,000 nodes each).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Suggester", "did_you_mean", "suggest"]

PREFIX = 3  # names sharing the first letters (lower case) come after the close ones
LIMIT = 3  # suggestions offered at most


class Suggester:
    """Names (in the order given) indexed for :meth:`close`."""

    def __init__(self, names: Iterable[str]) -> None:
        self._order: dict[str, int] = {}
        self._variants: dict[str, list[str]] = {}  # a lower-case variant -> names
        self._prefixes: dict[str, list[str]] = {}  # first 0-3 letters -> the first three names
        for name in names:
            if name in self._order:
                continue
            self._order[name] = len(self._order)
            lower = name.lower()
            for variant in {lower, *_deletions(lower)}:
                self._variants.setdefault(variant, []).append(name)
            for n in range(min(PREFIX, len(lower)) + 1):
                first = self._prefixes.setdefault(lower[:n], [])
                if len(first) < LIMIT:
                    first.append(name)

    def close(self, word: str, limit: int = LIMIT) -> list[str]:
        """Up to ``limit`` names close to ``word``, the closest first (ties in name order);
        ``word`` itself is never suggested."""
        lower = word.lower()
        found: set[str] = set()
        for variant in {lower, *_deletions(lower)}:
            found.update(self._variants.get(variant, ()))
        most = 1 if len(lower) <= 4 else 2
        ranked = sorted(
            (d, self._order[n], n)
            for n in found
            if n != word and (d := _distance(lower, n.lower())) <= most
        )
        out = [n for _, _, n in ranked]
        out += [n for n in self._prefixes.get(lower[:PREFIX], ()) if n != word and n not in out]
        return out[:limit]


def suggest(word: str, names: Iterable[str], limit: int = LIMIT) -> list[str]:
    """:meth:`Suggester.close` over a few names (keys, kinds)."""
    return Suggester(names).close(word, limit)


def did_you_mean(names: list[str]) -> str:
    """``did you mean 'a' or 'b'?``, or "" when there is nothing to suggest."""
    return f"did you mean {' or '.join(repr(n) for n in names)}?" if names else ""


def _deletions(word: str) -> list[str]:
    return [word[:i] + word[i + 1 :] for i in range(len(word))]


def _distance(a: str, b: str) -> int:
    """Edits from ``a`` to ``b`` (insert, delete, replace, swap two neighbours)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            row.append(cost)
        prev2, prev = prev, row
    return prev[-1]
