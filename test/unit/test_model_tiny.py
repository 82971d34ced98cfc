"""The tiny scene LLM built in code: tokenizer, sizes and validation."""
from __future__ import annotations

import pytest
from model_testutil import CORPUS, tiny_model

from scene_llm_ros.model import GROUND_TOKEN, POINT_TOKEN, SCENE_TOKEN
from scene_llm_ros.model.tiny import build_tiny_llm, build_tiny_tokenizer


def test_tiny_model_has_special_tokens_and_bitsandbytes_friendly_sizes():
    model = tiny_model()
    tokenizer = model.tokenizer
    for token in (SCENE_TOKEN, GROUND_TOKEN, POINT_TOKEN):
        ids = tokenizer(f"a {token} b", add_special_tokens=False)["input_ids"]
        assert tokenizer.convert_tokens_to_ids(token) in ids  # one token, never split
    assert (tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token) == \
        ("<pad>", "<s>", "</s>")
    config = model.llm.config
    assert config.vocab_size % 64 == 0 and config.vocab_size >= len(tokenizer)
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == \
        (128, 256, 2)
    assert model.config.llm_hidden_size == 128
    assert tokenizer.decode(tokenizer("where is the chair?")["input_ids"],
                            skip_special_tokens=True) == "where is the chair?"


def test_tiny_builders_reject_bad_sizes_and_corpora():
    with pytest.raises(ValueError, match="no non-empty text"):
        build_tiny_tokenizer(["", "  "])
    tokenizer = build_tiny_tokenizer(CORPUS, chat_template=False)
    assert not tokenizer.chat_template
    with pytest.raises(ValueError, match="multiples of 64, got 100 and 256"):
        build_tiny_llm(tokenizer, hidden_size=100)
    with pytest.raises(ValueError, match="num_heads 3 does not divide hidden_size 128"):
        build_tiny_llm(tokenizer, num_heads=3)
