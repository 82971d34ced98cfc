"""Replace placeholder-token embeddings by scene or point embeddings (one masked scatter)."""
from __future__ import annotations

import torch


def splice_embeddings(token_embeddings: torch.Tensor, input_ids: torch.Tensor,
                      placeholder_id: int, values: torch.Tensor) -> torch.Tensor:
    """Put ``values`` at the positions of ``placeholder_id``, in order.

    :param token_embeddings: (..., T, H) embeddings of ``input_ids``.
    :param input_ids: int64 (..., T).
    :param placeholder_id: the token whose positions receive ``values``.
    :param values: (N, H), N = number of placeholder positions.
    :return: a new (..., T, H) tensor; ``token_embeddings`` is left unchanged.
    :raises ValueError: when the placeholder count and N differ (both numbers named).
    """
    mask = input_ids == placeholder_id
    count = int(mask.sum())
    if count != values.shape[0]:
        raise ValueError(f"{count} placeholder tokens (id {placeholder_id}) but "
                         f"{values.shape[0]} embeddings to splice")
    if count == 0:
        return token_embeddings
    mask = mask.unsqueeze(-1).expand_as(token_embeddings)
    return token_embeddings.masked_scatter(mask, values.to(token_embeddings.dtype))
