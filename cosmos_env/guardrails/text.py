"""The text pre-guard: every text meant for a model passes `guard_text` first.

In the spirit of Cosmos's blocklist guard: a text is refused when one of its words, after
undoing digit-for-letter spellings ("k1ll"), has the stem (Snowball, from NLTK, so
"killing" and "killed" are "kill") of a blocklisted word or phrase, or is within one edit
(Levenshtein, from rapidfuzz) of a blocklisted word of six letters or more ("murdr"), or is
profanity by the better-profanity package's list. Words on the whitelist are never
refused: words that merely look like a blocked one ("strange" is one edit from
"strangle"). The blocklist is ``blocklist.txt`` beside this module. An allowed text comes
back unchanged; a refused one raises `TextRefused`, which names the word and the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

BLOCKLIST_FILE = "blocklist.txt"
FUZZY_MIN_LENGTH = 6  # shorter blocked words match exactly: one edit from "gun" is "sun"
# Ordinary words one edit from a blocked one, and the names of things a robot handles that
# better-profanity lists as slang.
DEFAULT_WHITELIST = ("strange", "laughter", "prison", "poisson", "beheld", "grenada")
DEFAULT_WHITELIST += ("pot", "knob", "screw", "weed")
_LEET = str.maketrans("0134578@$", "oieastbas")
_WORD = re.compile(r"[a-z0-9@$]+")


class TextRefused(ValueError):
    """A text the pre-guard refused; the message says which word and which rule."""


@dataclass(frozen=True)
class Verdict:
    """The guard's decision on one text: ``reason`` names the word and rule when refused."""

    allowed: bool
    reason: str = ""


def _words(text: str) -> list[str]:
    """Lower-case words, digits and symbols read as letters in words that have letters."""
    words = _WORD.findall(text.lower())
    return [w.translate(_LEET) if re.search("[a-z]", w) else w for w in words]


@cache
def _stemmer():
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


@cache
def _profanity():
    from better_profanity import Profanity

    return Profanity()  # its own word list and letter variants


def read_blocklist(text: str) -> tuple[str, ...]:
    """Entries of a blocklist file: one word or phrase per line, '#' comments."""
    lines = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return tuple(line for line in lines if line)


class TextGuard:
    """A blocklist guard over stems, near spellings and profanity (see the module doc).

    ``blocklist``: words or phrases (default: ``blocklist.txt``); ``whitelist``: words that
    are never refused (default `DEFAULT_WHITELIST`); ``profanity``: also refuse the
    better-profanity list."""

    def __init__(
        self,
        blocklist: tuple[str, ...] | None = None,
        whitelist: tuple[str, ...] = DEFAULT_WHITELIST,
        profanity: bool = True,
    ) -> None:
        if blocklist is None:
            source = resources.files("cosmos_env.guardrails") / BLOCKLIST_FILE
            blocklist = read_blocklist(source.read_text())
        stem = _stemmer().stem
        self.phrases = {tuple(stem(w) for w in _words(entry)): entry for entry in blocklist}
        words = {w for entry in blocklist for w in _words(entry)}
        self.long_words = {w for w in words if len(w) >= FUZZY_MIN_LENGTH}
        self.whitelist = {w.lower() for w in whitelist}
        self.profanity = profanity

    def check(self, text: str) -> Verdict:
        """Allowed, or refused with the reason; raises TypeError for a non-string."""
        if not isinstance(text, str):
            raise TypeError(f"the text guard takes a str, got {type(text).__name__}")
        words = _words(text)
        stems = [_stemmer().stem(w) for w in words]
        for i, word in enumerate(words):
            if word in self.whitelist:
                continue
            for phrase, entry in self.phrases.items():
                if tuple(stems[i : i + len(phrase)]) == phrase:
                    return Verdict(False, f"{word!r} is a form of the blocked {entry!r}")
            near = self._near(word)
            if near:
                return Verdict(False, f"{word!r} is one edit from the blocked {near!r}")
            if self.profanity and _profanity().contains_profanity(word):
                return Verdict(False, f"{word!r} is profanity (better-profanity's list)")
        return Verdict(True)

    def _near(self, word: str) -> str | None:
        if len(word) < FUZZY_MIN_LENGTH - 1:  # one edit from a long enough blocked word
            return None
        from rapidfuzz.distance import Levenshtein

        for blocked in self.long_words:
            if Levenshtein.distance(word, blocked, score_cutoff=1) <= 1:
                return blocked
        return None

    def __call__(self, text: str) -> str:
        """``text`` unchanged if allowed; else `TextRefused`, before any model sees it."""
        verdict = self.check(text)
        if not verdict.allowed:
            raise TextRefused(
                f"text refused by the pre-guard: {verdict.reason}; nothing was generated "
                "(guardrails/blocklist.txt lists what is refused)"
            )
        return text


@cache
def default_guard() -> TextGuard:
    return TextGuard()


def guard_text(text: str) -> str:
    """The default guard: ``text`` unchanged, or `TextRefused` naming the word and rule."""
    return default_guard()(text)
