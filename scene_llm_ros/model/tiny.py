"""A tiny scene LLM built in code: for tests and as the base of the embedded default model."""
from __future__ import annotations

from collections.abc import Iterable

import torch

from scene_llm_ros.fusion.encoders import encoder_from_spec
from scene_llm_ros.model.configuration_scene_llm import SceneLlmConfig
from scene_llm_ros.model.modeling_scene_llm import SceneLlm
from scene_llm_ros.model.processing_scene_llm import add_special_tokens

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<s>", "</s>"
#: A minimal chat template: role markers, EOS closes assistant turns.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{{ message['content'] }}{% if message['role'] == 'assistant' %}{{ eos_token }}"
    "{% else %}\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>\n"
    "{% endif %}")


def build_tiny_tokenizer(corpus_texts: Iterable[str], *, vocab_size: int = 1000,
                         chat_template: bool = True):
    """A byte-level BPE tokenizer trained on ``corpus_texts``.

    :param corpus_texts: training text (questions, answers, descriptions).
    :param vocab_size: BPE vocabulary size before the model's special tokens.
    :param chat_template: give it :data:`TINY_CHAT_TEMPLATE`; False leaves it without one,
        so prompts use the plain template.
    :return: a ``PreTrainedTokenizerFast`` with pad/bos/eos and ``<scene>``, ``<ground>``,
        ``<point>``.
    :raises ValueError: when the corpus is empty.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [text for text in corpus_texts if text and text.strip()]
    if not texts:
        raise ValueError("the tokenizer corpus has no non-empty text")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1,
                                  special_tokens=[PAD_TOKEN, BOS_TOKEN, EOS_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS_TOKEN,
                                        eos_token=EOS_TOKEN, pad_token=PAD_TOKEN)
    add_special_tokens(tokenizer)
    if chat_template:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def build_tiny_llm(tokenizer, *, hidden_size: int = 128, num_layers: int = 2,
                   num_heads: int = 4, intermediate_size: int = 256, seed: int = 0):
    """A randomly initialised Llama-style decoder sized for ``tokenizer``.

    Hidden and intermediate sizes must be multiples of 64 so bitsandbytes can quantize every
    Linear layer on the CPU; the vocabulary is padded to a multiple of 64 for the same reason.

    :raises ValueError: for sizes that are not multiples of 64 or heads that do not divide
        the hidden size.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    if hidden_size % 64 or intermediate_size % 64:
        raise ValueError(f"hidden_size and intermediate_size must be multiples of 64, got "
                         f"{hidden_size} and {intermediate_size}")
    if hidden_size % num_heads:
        raise ValueError(f"num_heads {num_heads} does not divide hidden_size {hidden_size}")
    vocab_size = -(-len(tokenizer) // 64) * 64
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size,
                         intermediate_size=intermediate_size, num_hidden_layers=num_layers,
                         num_attention_heads=num_heads,
                         num_key_value_heads=max(1, num_heads // 2),
                         max_position_embeddings=4096, tie_word_embeddings=False,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        llm = LlamaForCausalLM(config)
    llm.generation_config.eos_token_id = tokenizer.eos_token_id
    llm.generation_config.pad_token_id = tokenizer.pad_token_id
    return llm.eval()


def build_tiny_scene_llm(corpus_texts: Iterable[str], *, hidden_size: int = 128,
                         num_layers: int = 2, num_heads: int = 4, intermediate_size: int = 256,
                         vocab_size: int = 1000, scene_dim: int = 128, grounding_dim: int = 128,
                         patch_encoder: dict | None = None, token_classes: bool = False,
                         object_tokens: int = 0, chat_template: bool = True,
                         labels: list[str] | None = None, seed: int = 0) -> SceneLlm:
    """A complete tiny :class:`SceneLlm` with random weights.

    :param corpus_texts: text the tokenizer is trained on.
    :param patch_encoder: encoder spec (``SceneLlmConfig.patch_encoder``); default a seeded
        built-in encoder, ``{"type": "builtin", "path": DIR}`` a trained one (its weights
        then travel inside the model's checkpoints), ``{"type": "hf", "path": DIR}`` a local
        vision tower.
    :param token_classes: see ``SceneLlmConfig.token_classes``.
    :param object_tokens: see ``SceneLlmConfig.object_tokens``; their classes are the patch
        encoder's (ValueError when it classifies nothing).
    :param labels: label vocabulary; default the ScanNet benchmark classes.
    :param seed: seeds the LLM and the scene-side modules.
    """
    tokenizer = build_tiny_tokenizer(corpus_texts, vocab_size=vocab_size,
                                     chat_template=chat_template)
    llm = build_tiny_llm(tokenizer, hidden_size=hidden_size, num_layers=num_layers,
                         num_heads=num_heads, intermediate_size=intermediate_size, seed=seed)
    spec = dict(patch_encoder or {"type": "builtin"})
    encoder = encoder_from_spec(spec, seed=seed)
    if spec["type"] == "builtin":
        spec.pop("path", None)  # saved checkpoints carry the weights, not the training path
    extra = {} if labels is None else {"labels": list(labels)}
    config = SceneLlmConfig(feature_dim=encoder.feature_dim, scene_dim=scene_dim,
                            llm_hidden_size=hidden_size, grounding_dim=grounding_dim,
                            patch_encoder=spec, token_classes=token_classes,
                            object_tokens=object_tokens,
                            object_classes=list(encoder.class_names) if object_tokens else [],
                            **extra)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model = SceneLlm(config, llm, tokenizer, encoder)
    return model.eval()
