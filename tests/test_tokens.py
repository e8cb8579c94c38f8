"""tf_rl_text.tokens: padding, positions, encoding and decoding against hand-written arrays (no model)."""
import numpy as np
import pytest

from conftest import make_word_tokenizer  # ids: <eos> 0, <pad> 1, a 2, b 3, c 4, x 5
from tf_rl_text import tokens


def test_pad_token_ids_left_and_right_with_min_length_and_empty_rows():
    ids, mask = tokens.pad_token_ids([[5, 6], [7], []], 1, "left")
    np.testing.assert_array_equal(ids, [[5, 6], [1, 7], [1, 1]])
    np.testing.assert_array_equal(mask, [[1, 1], [0, 1], [0, 0]])
    ids, mask = tokens.pad_token_ids([[5, 6], [7], []], 1, "right", min_length=3)
    np.testing.assert_array_equal(ids, [[5, 6, 1], [7, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(mask, [[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert ids.dtype == mask.dtype == np.int32
    ids, mask = tokens.pad_token_ids([[], []], 9)  # never narrower than one column
    np.testing.assert_array_equal(ids, [[9], [9]])
    np.testing.assert_array_equal(mask, [[0], [0]])


def test_position_ids_skip_left_padding():
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], np.int32)
    np.testing.assert_array_equal(tokens.position_ids_from_mask(mask).numpy(),
                                  [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0]])


def test_encode_texts_appends_eos_pads_right_and_cuts_at_max_length():
    tok = make_word_tokenizer()
    assert tokens.texts_to_ids(tok, ["a b x", ""]) == [[2, 3, 5], []]
    ids, mask = tokens.encode_texts(tok, ["a b", "c", ""], 3)
    np.testing.assert_array_equal(ids, [[2, 3, 0], [4, 0, 1], [0, 1, 1]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    ids, mask = tokens.encode_texts(tok, ["a b", "c", ""], 2, add_eos=False)
    np.testing.assert_array_equal(ids, [[2, 3], [4, 1], [1, 1]])
    np.testing.assert_array_equal(mask, [[1, 1], [1, 0], [0, 0]])
    assert tokens.encode_texts(tok, ["a b"], 0)[0].shape == (1, 0)  # the width asked for, even 0


def test_ids_to_texts_reads_the_mask_and_drops_special_tokens():
    tok = make_word_tokenizer()
    assert tokens.ids_to_texts(tok, [[2, 3, 0], [4, 5, 1]], [[1, 1, 1], [1, 0, 0]]) == ["a b", "c"]
    assert tokens.ids_to_texts(tok, np.array([[5, 1, 2]])) == ["x a"]  # no mask: every token, pad dropped


def test_ensure_pad_token_falls_back_to_eos_or_says_what_to_set():
    tok = make_word_tokenizer()
    tok.pad_token = None
    assert tokens.ensure_pad_token(tok) == 0 and tok.pad_token == "<eos>"
    tok.pad_token, tok.eos_token = None, None
    with pytest.raises(ValueError, match="neither a pad token nor an EOS token; set tokenizer.pad_token"):
        tokens.ensure_pad_token(tok)


def test_each_name_is_declared_by_the_module_that_defines_it_only():
    """No module re-exports what moved to tokens.py / generation.py (the pre-1.0 shims went in 0.1.0)."""
    from tf_rl_text import agent, generation
    from tf_rl_text.trainers import mle

    assert agent.__all__ == ["RLAgent"] and "encode_texts" not in mle.__all__
    assert "encode_texts" in tokens.__all__ and "resolve_greedy" in generation.__all__
    assert issubclass(agent.RLAgent, generation.GenerationMixin)
