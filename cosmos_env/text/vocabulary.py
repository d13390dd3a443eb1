"""Word-level vocabulary of an instruction corpus: text -> token ids (B, L) and a mask.

Why words and not sub-words: the instructions come from templates over a small closed set
of words (tasks, colours, shapes, places), so a word is the unit that composes; a held-out
instruction is new as a combination, not as words. A word the corpus never had becomes
``<unk>``. The vocabulary is data: it is stored in the release's config and rebuilt from
it, so nothing is downloaded or fitted at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from cosmos_env.guardrails.text import guard_text

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` (punctuation and digits dropped)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Token ids: 0 is padding, 1 unknown, then ``words`` in order."""

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.words)) != len(self.words) or {PAD, UNK} & set(self.words):
            raise ValueError("vocabulary words must be distinct and not <pad>/<unk>")

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocabulary:
        """Every word of ``texts`` (each guarded first), sorted so that the ids do not
        depend on the order of the corpus."""
        seen = {w for text in texts for w in words(guard_text(text))}
        return cls(tuple(sorted(seen)))

    def __len__(self) -> int:
        return len(self.words) + 2

    @cached_property
    def _index(self) -> dict[str, int]:
        return {w: i + 2 for i, w in enumerate(self.words)}

    def ids(self, text: str) -> list[int]:
        """Token ids of one text, unguarded (``encode`` guards)."""
        return [self._index.get(w, 1) for w in words(text)]

    def encode(self, texts: Sequence[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (B, L) int64 and a validity mask (B, L) bool of ``texts``, padded to
        the longest (at most ``max_len``). Every text passes the pre-guard first: a refused
        one raises `TextRefused` and nothing is encoded. An empty text or one longer than
        ``max_len`` words is an error that says so."""
        rows = []
        for text in texts:
            ids = self.ids(guard_text(text))
            if not ids:
                raise ValueError(f"instruction {text!r} has no words")
            if len(ids) > max_len:
                raise ValueError(
                    f"instruction {text!r} has {len(ids)} words; this model reads at most {max_len}"
                )
            rows.append(ids)
        length = max(len(r) for r in rows)
        out = np.zeros((len(rows), length), np.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out, out != 0

    def to_dict(self) -> dict:
        return {"words": list(self.words)}

    @classmethod
    def from_dict(cls, d: dict) -> Vocabulary:
        return cls(tuple(d["words"]))
