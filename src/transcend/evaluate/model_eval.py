"""The model's exact-match accuracy on every query, at several temperatures.

Entity names are single tokens, so a completion's answer is its first token and
the probability that a sample at temperature tau is correct is exactly the
softmax(logits / tau) mass on the correct tails. We report that expectation
(the accuracy of sampling, without sampling noise); tau = 0 is greedy decoding.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tokenizers import Tokenizer

from transcend.corpus.render import prompt_tokens
from transcend.corpus.tokenizer import ENTITY_OFFSET
from transcend.learner.model import GPT
from transcend.world.kg import KnowledgeGraph


def length_batches(prompts: list[np.ndarray], batch_size: int, device: torch.device
                   ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Batches of prompts of one length (so none needs padding): (their indices, their tokens)."""
    lengths = np.array([len(p) for p in prompts])
    for L in np.unique(lengths):
        idx = np.flatnonzero(lengths == L)
        for i in range(0, len(idx), batch_size):
            chunk = idx[i:i + batch_size]
            yield chunk, torch.from_numpy(np.stack([prompts[j] for j in chunk])).to(device)


def next_token_logits(model: GPT, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        return model(x[:, -model.cfg.block_size:])[:, -1, :]


@torch.no_grad()
def answer_logits(model: GPT, prompts: list[np.ndarray], device: torch.device, batch_size: int = 1024
                  ) -> torch.Tensor:
    """Next-token logits after each prompt, (len(prompts), vocab) float32 on CPU."""
    model.eval()
    out = torch.empty(len(prompts), model.cfg.vocab_size)
    for chunk, x in length_batches(prompts, batch_size, device):
        out[torch.from_numpy(chunk)] = next_token_logits(model, x, device).float().cpu()
    return out


def accuracy_by_temperature(logits: torch.Tensor, kg: KnowledgeGraph, temperatures: list[float]
                            ) -> dict[float, np.ndarray]:
    """Per-query probability that a completion at each temperature names a correct tail."""
    q_of_edge = torch.from_numpy(kg.edge_query)
    tail_tok = torch.from_numpy(kg.tails.astype(np.int64) + ENTITY_OFFSET)
    out: dict[float, np.ndarray] = {}
    for tau in temperatures:
        if tau == 0:
            greedy = logits.argmax(dim=1)
            hit = (greedy[q_of_edge] == tail_tok).double()
        else:
            probs = torch.softmax(logits.double() / tau, dim=1)
            hit = probs[q_of_edge, tail_tok]
        out[tau] = torch.zeros(len(logits), dtype=torch.float64).index_add_(0, q_of_edge, hit).numpy()
    return out


def entity_logits_only(logits: torch.Tensor, num_entities: int) -> torch.Tensor:
    """``logits`` with every token but the entity names at -inf: the answer is read among entities.

    The generalization mode scores this way, because its level-3/4 phrasings make
    the probe ambiguous ("The r of h is" may go on "listed as h2" in level 4's words).
    """
    out = torch.full_like(logits, float("-inf"))
    out[:, ENTITY_OFFSET:ENTITY_OFFSET + num_entities] = logits[:, ENTITY_OFFSET:ENTITY_OFFSET + num_entities]
    return out


def model_accuracy(model: GPT, kg: KnowledgeGraph, tok: Tokenizer, temperatures: list[float],
                   device: torch.device, entities_only: bool = False) -> dict[float, np.ndarray]:
    prompts = prompt_tokens(kg, tok, *kg.queries)
    logits = answer_logits(model, prompts, device)
    if entities_only:
        logits = entity_logits_only(logits, kg.num_entities)
    return accuracy_by_temperature(logits, kg, temperatures)
