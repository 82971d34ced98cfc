"""What the grounding head adds to a ``<ground>`` query beyond its own hidden state.

A small LLM blends the question into the ``<ground>`` position poorly (it named the class of
unique objects for 0.58 of held-out ScanRefer items), and picks one of several objects of a
class ("the chair closest to the door") only by relating scene tokens to each other.

* :class:`QuestionReader`: the query attends over the question's hidden states, so the word
  that names the object reaches the matching directly.
* :class:`RelationLayer`: the scene keys, conditioned on the query, attend to each other with
  a bias learned from their pairwise offsets, so a token can score higher for being near (or
  left of, or farthest from) the tokens the query mentions as anchors.
"""
from __future__ import annotations

import torch
from torch import nn


class QuestionReader(nn.Module):
    """Attention of N queries over T question hidden states, added to the queries.

    :param hidden_size: LLM hidden size (the question's hidden states).
    :param dim: query width.
    """

    def __init__(self, hidden_size: int, dim: int) -> None:
        super().__init__()
        self.key = nn.Linear(hidden_size, dim)
        self.value = nn.Linear(hidden_size, dim)
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, queries: torch.Tensor, question_hidden: torch.Tensor) -> torch.Tensor:
        """(N, D) queries, (T, H) question hidden states -> (N, D) queries that read it."""
        if question_hidden.shape[0] == 0:
            return queries
        question_hidden = question_hidden.to(queries.dtype)
        keys, values = self.key(question_hidden), self.value(question_hidden)
        weights = (queries @ keys.T / keys.shape[-1] ** 0.5).softmax(dim=-1)  # (N, T)
        return queries + self.out(weights @ values)


class RelationLayer(nn.Module):
    """One query-conditioned self-attention layer over the scene keys, biased by geometry.

    :param dim: key width.
    :param num_heads: attention heads; ``dim`` must divide by it.
    :param offset_scale_m: pairwise offsets are divided by this before the bias MLP.
    """

    def __init__(self, dim: int, num_heads: int = 4, offset_scale_m: float = 2.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must divide by num_heads {num_heads}")
        self.num_heads = num_heads
        self.offset_scale_m = offset_scale_m
        self.condition = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        # Offsets (dx, dy, dz) and horizontal and full distance: enough for "left of",
        # "above", "closest to" once the query says which tokens are the anchors.
        self.bias = nn.Sequential(nn.Linear(5, 32), nn.GELU(), nn.Linear(32, num_heads))
        self.feed_forward = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(),
                                          nn.Linear(2 * dim, dim))

    def pair_bias(self, positions: torch.Tensor) -> torch.Tensor:
        """(K, 3) positions -> (heads, K, K) attention bias."""
        offsets = (positions[None, :, :] - positions[:, None, :]).float() / self.offset_scale_m
        features = torch.cat([offsets, offsets[..., :2].norm(dim=-1, keepdim=True),
                              offsets.norm(dim=-1, keepdim=True)], dim=-1)  # (K, K, 5)
        return self.bias(features.to(self.bias[0].weight.dtype)).permute(2, 0, 1)

    def forward(self, keys: torch.Tensor, queries: torch.Tensor, bias: torch.Tensor
                ) -> torch.Tensor:
        """(N, K, D) keys, (N, D) queries, (heads, K, K) bias -> (N, K, D) keys."""
        n, k, d = keys.shape
        x = self.norm(keys + self.condition(queries)[:, None, :])
        q, kk, v = self.qkv(x).view(n, k, 3, self.num_heads, d // self.num_heads).unbind(dim=2)
        q, kk, v = (t.transpose(1, 2) for t in (q, kk, v))  # (N, heads, K, d/heads)
        attended = torch.nn.functional.scaled_dot_product_attention(
            q, kk, v, attn_mask=bias[None].to(q.dtype))
        keys = keys + self.out(attended.transpose(1, 2).reshape(n, k, d))
        return keys + self.feed_forward(keys)
