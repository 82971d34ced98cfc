"""Prompt construction per task, teacher-forcing labels, and the embedding splice."""
from __future__ import annotations

import pytest
import torch
from model_testutil import CORPUS, tiny_model

from scene_llm_ros.model import (
    GROUND_TOKEN,
    POINT_TOKEN,
    InvalidPromptPointsError,
    InvalidQuestionError,
    UnknownTaskError,
    build_prompt,
    build_training_example,
)
from scene_llm_ros.model.processing_scene_llm import IGNORE_INDEX, TASKS, answer_text, user_message
from scene_llm_ros.model.splicing import splice_embeddings
from scene_llm_ros.model.tiny import build_tiny_tokenizer

SYSTEM = "You see a room."


@pytest.mark.parametrize("chat_template", [True, False])
def test_prompt_puts_exactly_k_scene_tokens_at_the_end_of_the_shared_prefix(chat_template):
    model = tiny_model(chat_template)
    ids = model.token_ids
    first = build_prompt(model.tokenizer, "where is the chair?", num_scene_tokens=37,
                         system_prompt=SYSTEM)
    second = build_prompt(model.tokenizer, "how many beds?", task="qa", num_scene_tokens=37,
                          system_prompt=SYSTEM)
    assert first.prefix_ids[-37:] == [ids.scene] * 37
    assert first.input_ids.count(ids.scene) == 37
    assert first.prefix_ids == second.prefix_ids  # shareable across questions and tasks
    assert first.suffix_ids != second.suffix_ids
    text = model.tokenizer.decode(first.suffix_ids)
    assert "where is the chair?" in text
    if chat_template:
        assert model.tokenizer.decode(first.prefix_ids).startswith("<s><|system|>")
        assert text.endswith("<|assistant|>\n")
    else:
        assert first.prefix_ids[0] == model.tokenizer.bos_token_id
        assert text.endswith("ASSISTANT:")


def test_prompt_points_get_one_placeholder_each():
    model = tiny_model()
    prompt = build_prompt(model.tokenizer, "what is this?", task="caption", num_scene_tokens=4,
                          num_points=2, system_prompt=SYSTEM)
    assert prompt.suffix_ids.count(model.token_ids.point) == 2
    placed = build_prompt(model.tokenizer, f"is {POINT_TOKEN} left of {POINT_TOKEN}?",
                          num_scene_tokens=4, num_points=2, system_prompt=SYSTEM)
    assert placed.suffix_ids.count(model.token_ids.point) == 2


def test_every_task_has_its_instruction_and_situated_carries_the_situation():
    for task in TASKS:
        text = user_message("what is on my left?", task=task, situation="I sit on the bed.")
        assert text.startswith("<scene>\n")
        assert text.endswith("Question: what is on my left?")
    assert "Situation: I sit on the bed." in user_message("q?", task="situated",
                                                          situation="I sit on the bed.")
    assert user_message("where is the chair?") == "<scene>\nwhere is the chair?"


@pytest.mark.parametrize("chat_template", [True, False])
def test_training_example_masks_the_prompt_and_matches_inference_ids(chat_template):
    model = tiny_model(chat_template)
    answer = f"the chair {GROUND_TOKEN} next to the table {GROUND_TOKEN}"
    example = build_training_example(model.tokenizer, "find the chair", answer, task="ground",
                                     num_scene_tokens=16, system_prompt=SYSTEM)
    prompt = build_prompt(model.tokenizer, "find the chair", task="ground",
                          num_scene_tokens=16, system_prompt=SYSTEM)
    n = len(prompt.input_ids)
    assert example.num_prompt_tokens == n
    assert example.input_ids[:n].tolist() == prompt.input_ids
    assert (example.labels[:n] == IGNORE_INDEX).all()
    assert example.labels[n:].tolist() == example.input_ids[n:].tolist()
    assert example.num_ground_tokens == 2
    target = model.tokenizer.decode(example.input_ids[n:].tolist())
    assert target == (f"{answer}</s>" if chat_template else f" {answer}</s>")
    assert answer_text(model.tokenizer, example.input_ids[n:].tolist()) == \
        "the chair next to the table"


def test_bad_prompts_raise_clear_errors():
    tokenizer = tiny_model().tokenizer
    with pytest.raises(InvalidQuestionError, match="empty"):
        build_prompt(tokenizer, "   ", num_scene_tokens=4, system_prompt=SYSTEM)
    with pytest.raises(UnknownTaskError, match="'detect'"):
        build_prompt(tokenizer, "where?", task="detect", num_scene_tokens=4,
                     system_prompt=SYSTEM)
    with pytest.raises(InvalidQuestionError, match="reserved"):
        build_prompt(tokenizer, "what is <scene>?", num_scene_tokens=4, system_prompt=SYSTEM)
    with pytest.raises(InvalidPromptPointsError, match="1 <point> placeholders but 2"):
        build_prompt(tokenizer, f"what is {POINT_TOKEN}?", num_scene_tokens=4, num_points=2,
                     system_prompt=SYSTEM)
    with pytest.raises(InvalidQuestionError, match="empty"):
        build_training_example(tokenizer, "where?", "", num_scene_tokens=4,
                               system_prompt=SYSTEM)


def test_splice_replaces_exactly_the_placeholder_positions_in_order():
    ids = torch.tensor([[5, 9, 9, 9, 6, 9]])
    embeddings = torch.zeros(1, 6, 4)
    values = torch.arange(16, dtype=torch.float32).reshape(4, 4) + 1
    spliced = splice_embeddings(embeddings, ids, 9, values)
    torch.testing.assert_close(spliced[0, [1, 2, 3, 5]], values)
    assert spliced[0, [0, 4]].abs().sum() == 0
    assert embeddings.abs().sum() == 0  # input untouched
    with pytest.raises(ValueError, match="4 placeholder tokens .* but 3 embeddings"):
        splice_embeddings(embeddings, ids, 9, values[:3])


def test_a_template_without_a_system_turn_gets_the_system_prompt_in_the_user_turn():
    tokenizer = build_tiny_tokenizer(CORPUS)
    tokenizer.chat_template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}"
        "{% endif %}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}")
    prompt = build_prompt(tokenizer, "where is the chair?", num_scene_tokens=3,
                          system_prompt=SYSTEM)
    assert tokenizer.decode(prompt.prefix_ids) == f"[user] {SYSTEM}\n\n<scene><scene><scene>"
    assert tokenizer.decode(prompt.suffix_ids) == "\nwhere is the chair?\n[assistant] "
