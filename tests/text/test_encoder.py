"""The text encoder: shapes, padding, the null text for guidance."""

import pytest
import torch

from cosmos_env.text.encoder import TextEncoder, TextEncoderConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = TextEncoderConfig(width=32, depth=1, heads=4, max_len=6)


def encoder() -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(CFG, vocab_size=10).eval()


def test_tokens_have_the_width_and_zero_padding():
    ids = torch.tensor([[2, 3, 4, 0], [5, 6, 0, 0]])
    tokens = encoder()(ids, ids != 0)
    assert tokens.shape == (2, 4, 32)
    assert torch.count_nonzero(tokens[0, 3]) == 0 and torch.count_nonzero(tokens[1, 2:]) == 0


def test_padding_does_not_change_the_real_tokens():
    enc = encoder()
    short = torch.tensor([[2, 3]])
    padded = torch.tensor([[2, 3, 0, 0]])
    torch.testing.assert_close(enc(short, short != 0), enc(padded, padded != 0)[:, :2])


def test_word_order_and_words_matter():
    enc = encoder()
    a, b, c = torch.tensor([[2, 3]]), torch.tensor([[3, 2]]), torch.tensor([[2, 4]])
    out = enc(a, a != 0)
    assert not torch.allclose(out, enc(b, b != 0)[:, [1, 0]])
    assert not torch.allclose(out, enc(c, c != 0))


def test_too_long_a_text_is_refused():
    ids = torch.ones(1, 7, dtype=torch.long)
    with pytest.raises(ValueError, match="7 words; this encoder reads at most 6"):
        encoder()(ids, ids != 0)


def test_drop_swaps_the_chosen_rows_for_the_null_text():
    enc = encoder()
    ids = torch.tensor([[2, 3, 4], [5, 6, 0]])
    tokens, mask = enc(ids, ids != 0), ids != 0
    out, out_mask = enc.drop(tokens, mask, torch.tensor([False, True]))
    torch.testing.assert_close(out[0], tokens[0])
    assert out_mask[0].tolist() == mask[0].tolist()
    null, null_mask = enc.null(1)
    torch.testing.assert_close(out[1, 0], null[0, 0])
    assert out_mask[1].tolist() == [True, False, False] and null_mask.all()
    assert torch.count_nonzero(out[1, 1:]) == 0
