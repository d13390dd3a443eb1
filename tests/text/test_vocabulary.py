"""The instruction vocabulary: words -> ids, padding, unknown words, the guard in front."""

import numpy as np
import pytest

from cosmos_env.guardrails.text import TextRefused
from cosmos_env.text.vocabulary import Vocabulary, words

CORPUS = ["push the red cube into the green zone", "put the blue cylinder in the bowl"]


def test_vocabulary_is_sorted_distinct_words_of_the_corpus():
    vocab = Vocabulary.from_texts(CORPUS + ["Push the RED cube, into the green zone!"])
    assert vocab.words == tuple(sorted(set(words(" ".join(CORPUS)))))
    assert len(vocab) == len(vocab.words) + 2  # <pad> and <unk>
    assert Vocabulary.from_texts(reversed(CORPUS)) == vocab  # the corpus order does not matter


def test_encode_pads_to_the_longest_and_maps_unknown_words_to_one():
    vocab = Vocabulary.from_texts(CORPUS)
    ids, mask = vocab.encode(["put the red cube in the bowl", "push the purple cube"], 16)
    assert ids.shape == mask.shape == (2, 7) and ids.dtype == np.int64
    assert mask[0].all() and mask[1].tolist() == [True] * 4 + [False] * 3
    assert ids[1, 2] == 1  # "purple" is not in the corpus: <unk>
    assert (ids[~mask] == 0).all()
    # A word has one id wherever it appears.
    assert ids[0, 1] == ids[0, 5] == ids[1, 1] == vocab.words.index("the") + 2


def test_encode_errors_name_the_problem():
    vocab = Vocabulary.from_texts(CORPUS)
    with pytest.raises(ValueError, match="has no words"):
        vocab.encode(["!!"], 16)
    with pytest.raises(ValueError, match="has 8 words; this model reads at most 4"):
        vocab.encode([CORPUS[0]], 4)
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary(("cube", "cube"))


def test_a_refused_text_is_never_encoded():
    vocab = Vocabulary.from_texts(CORPUS)
    with pytest.raises(TextRefused, match="refused by the pre-guard"):
        vocab.encode(["push the cube", "kill the cube"], 16)
    with pytest.raises(TextRefused):
        Vocabulary.from_texts(["stab the cube"])


def test_round_trips_through_its_dict():
    vocab = Vocabulary.from_texts(CORPUS)
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
