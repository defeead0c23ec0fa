"""Two-hop evaluation: the model (latent and chain of thought), the experts, two baselines, Appendix A.2.

A question is (a, r1, r2); its correct answers are the tails c of every path
a -r1-> b -r2-> c (one in a generated graph). Scores are per question.

* **Latent**: the prompt "The {r2} of the {r1} of {a} is"; the answer is one
  entity token, so its greedy accuracy is read from one softmax, among the
  entity tokens (as for one-hop accuracy in this mode: level-4 phrasing may
  continue "is" with "listed as").
* **Chain of thought**: the prompt "What is the {r2} of the {r1} of {a}?",
  decoded greedily; the answer is the token after the first ";" (the model
  names the bridge first). Only that final answer is scored; the bridge's
  accuracy is reported beside it.
* **Baselines**: *majority relation* answers the most common tail of r2 in
  the graph; *direct connection* answers uniformly among the entities linked
  to a by a one-hop fact whose type fits r2's tail (its expected accuracy).
* **Relation-pair prior**: the most common answer c among the *training*
  two-hop facts with the same (r1, r2), else the majority-relation answer.
  It is what a learner that memorised the two-hop format without composing
  could do; the model's accuracy on the questions both priors get wrong
  (``beyond_priors``) is the cleanest measure of composition.
* **Experts**: expert i answers a question it holds both edges of (rightly:
  its edges are true); otherwise it guesses from its own distribution of r2's
  tails, decoded by the rule every answerer is scored by (at tau its counts
  raised to 1/tau and renormalised, at tau = 0 its most common tails, ties
  split), as every expert does with a query it holds nothing for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer

from transcend.corpus.phrasing import COT_QUESTION, TWO_HOP_TEMPLATES
from transcend.corpus.tokenizer import ENTITY_OFFSET, EOS_ID
from transcend.evaluate.model_eval import answer_logits, entity_logits_only, length_batches, next_token_logits
from transcend.learner.model import GPT
from transcend.world.kg import KnowledgeGraph
from transcend.world.two_hop import TwoHopFacts

COT_MAX_TOKENS = 6  # bridge, ";", answer, and a little slack for a model that rambles


@dataclass
class Questions:
    """Distinct (a, r1, r2) questions of a set of paths, with every correct answer."""

    a: np.ndarray
    r1: np.ndarray
    r2: np.ndarray
    path_question: np.ndarray  # for each path, the index of its question
    paths: TwoHopFacts

    def __len__(self) -> int:
        return len(self.a)

    def hits(self, answers: np.ndarray) -> np.ndarray:
        """1 where the answered entity (one per question) is a correct answer."""
        hit = np.zeros(len(self), dtype=np.float64)
        ok = answers[self.path_question] == self.paths.c
        np.maximum.at(hit, self.path_question, ok.astype(np.float64))
        return hit


def questions_of(paths: TwoHopFacts, num_relations: int) -> Questions:
    key = paths.question_key(num_relations)
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return Questions(a=paths.a[first], r1=paths.r1[first], r2=paths.r2[first], path_question=inverse,
                     paths=paths)


def _prompts(q: Questions, kg: KnowledgeGraph, tok: Tokenizer, cot: bool) -> list[np.ndarray]:
    rel, names = [r.name for r in kg.relations], kg.entity_names
    if cot:
        texts = [COT_QUESTION.format(r1=rel[r1], r2=rel[r2], a=names[a]) for a, r1, r2 in zip(q.a, q.r1, q.r2)]
    else:
        tmpl = TWO_HOP_TEMPLATES[0][: TWO_HOP_TEMPLATES[0].index("{c}")].rstrip()
        texts = [tmpl.format(r1=rel[r1], r2=rel[r2], a=names[a]) for a, r1, r2 in zip(q.a, q.r1, q.r2)]
    return [np.r_[EOS_ID, np.asarray(e.ids, dtype=np.int64)] for e in tok.encode_batch(texts, add_special_tokens=False)]


def latent_accuracy(model: GPT, q: Questions, kg: KnowledgeGraph, tok: Tokenizer, device: torch.device) -> np.ndarray:
    if len(q) == 0:
        return np.zeros(0)
    logits = entity_logits_only(answer_logits(model, _prompts(q, kg, tok, cot=False), device), kg.num_entities)
    return q.hits(logits.argmax(dim=1).numpy() - ENTITY_OFFSET)


@torch.no_grad()
def cot_accuracy(model: GPT, q: Questions, kg: KnowledgeGraph, tok: Tokenizer, device: torch.device,
                 batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Per question: (final answer correct, bridge named correctly), greedy decoding."""
    if len(q) == 0:
        return np.zeros(0), np.zeros(0)
    model.eval()
    sep = tok.token_to_id(";")
    prompts = _prompts(q, kg, tok, cot=True)
    generated = np.zeros((len(q), COT_MAX_TOKENS), dtype=np.int64)
    for chunk, x in length_batches(prompts, batch_size, device):
        start = x.shape[1]
        for _ in range(COT_MAX_TOKENS):
            x = torch.cat([x, next_token_logits(model, x, device).argmax(dim=1)[:, None]], dim=1)
        generated[chunk] = x[:, start:].cpu().numpy()
    is_sep = generated == sep
    first = np.where(is_sep.any(axis=1), is_sep.argmax(axis=1), COT_MAX_TOKENS)
    ok = first + 1 < COT_MAX_TOKENS
    answer = np.full(len(q), -1, dtype=np.int64)
    answer[ok] = generated[ok, first[ok] + 1] - ENTITY_OFFSET
    bridge_hit = np.zeros(len(q))
    np.maximum.at(bridge_hit, q.path_question,
                  (generated[q.path_question, 0] - ENTITY_OFFSET == q.paths.b).astype(np.float64))
    return q.hits(answer), bridge_hit


def _majority_tails(kg: KnowledgeGraph) -> np.ndarray:
    """The most common tail of each relation in the graph (ties: the lowest entity index)."""
    R, V = len(kg.relations), kg.num_entities
    counts = np.bincount(kg.rels.astype(np.int64) * V + kg.tails, minlength=R * V).reshape(R, V)
    return counts.argmax(axis=1)


def majority_relation_baseline(q: Questions, kg: KnowledgeGraph) -> np.ndarray:
    """Answer the most common tail of r2 (ties: the lowest entity index)."""
    return q.hits(_majority_tails(kg)[q.r2])


def relation_pair_baseline(q: Questions, kg: KnowledgeGraph, train: TwoHopFacts) -> np.ndarray:
    """Answer the most common c of the training two-hop facts with the question's (r1, r2)
    (ties: the lowest entity index); a pair never trained on falls back to the majority relation."""
    R, V = len(kg.relations), kg.num_entities
    answer = _majority_tails(kg)[q.r2]
    if len(train):
        pair = train.r1.astype(np.int64) * R + train.r2
        key = pair * V + train.c
        uniq, cnt = np.unique(key, return_counts=True)
        upair, uc = uniq // V, uniq % V
        order = np.lexsort((uc, -cnt, upair))  # per pair: most written first, then lowest entity
        upair, uc = upair[order], uc[order]
        first = np.r_[True, upair[1:] != upair[:-1]]
        best_pair, best_c = upair[first], uc[first]
        qpair = q.r1.astype(np.int64) * R + q.r2
        pos = np.minimum(np.searchsorted(best_pair, qpair), len(best_pair) - 1)
        seen = best_pair[pos] == qpair
        answer = np.where(seen, best_c[pos], answer)
    return q.hits(answer)


def direct_connection_baseline(q: Questions, kg: KnowledgeGraph) -> tuple[np.ndarray, np.ndarray]:
    """(expected accuracy of answering a random type-fitting neighbour of a, whether an answer is one)."""
    by_tail = np.argsort(kg.tails, kind="stable")
    sorted_tails = kg.tails[by_tail]
    out_lo, out_hi = np.searchsorted(kg.heads, q.a), np.searchsorted(kg.heads, q.a, side="right")
    in_lo, in_hi = np.searchsorted(sorted_tails, q.a), np.searchsorted(sorted_tails, q.a, side="right")
    answers: list[set[int]] = [set() for _ in range(len(q))]
    for p, qi in enumerate(q.path_question):
        answers[qi].add(int(q.paths.c[p]))
    acc, linked = np.zeros(len(q)), np.zeros(len(q))
    types = kg.entity_types
    for i in range(len(q)):
        nbrs = set(kg.tails[out_lo[i]:out_hi[i]].tolist()) | set(kg.heads[by_tail[in_lo[i]:in_hi[i]]].tolist())
        tail_type = kg.relations[q.r2[i]].tail_type
        if types is not None and tail_type in kg.type_names:
            nbrs = {n for n in nbrs if types[n] == kg.type_names.index(tail_type)}
        good = len(nbrs & answers[i])
        linked[i] = float(good > 0)
        acc[i] = good / len(nbrs) if nbrs else 0.0
    return acc, linked


def expert_two_hop_accuracy(q: Questions, kg: KnowledgeGraph, areas: np.ndarray, temperatures: list[float] = (0.0,)
                            ) -> dict[float, np.ndarray]:
    """Per temperature, the accuracy of each expert (one per cluster) on each question, (experts, questions)."""
    k = int(areas.max()) + 1
    V = kg.num_entities
    paths = q.paths
    answers = np.unique(q.path_question.astype(np.int64) * V + paths.c)
    aq, ac = answers // V, answers % V  # distinct (question, correct answer)
    ar2 = q.r2[aq].astype(np.int64)
    out = {tau: np.zeros((k, len(q))) for tau in temperatures}
    for i in range(k):
        mine = areas == i
        key = kg.rels[mine].astype(np.int64) * V + kg.tails[mine]
        uniq, cnt = np.unique(key, return_counts=True)
        rel_of = uniq // V
        top = np.zeros(len(kg.relations))
        np.maximum.at(top, rel_of, cnt)
        knows = np.zeros(len(q), bool)
        knows[q.path_question[mine[paths.edge1] & mine[paths.edge2]]] = True
        pos = np.minimum(np.searchsorted(uniq, ar2 * V + ac), max(len(uniq) - 1, 0))
        c_right = np.where((len(uniq) > 0) & (uniq[pos] == ar2 * V + ac), cnt[pos] if len(uniq) else 0, 0)
        for tau in temperatures:
            if tau == 0:
                w_all, w_right = (cnt == top[rel_of]).astype(float), (c_right == top[ar2]) & (c_right > 0)
            else:
                w_all = np.exp((np.log(cnt) - np.log(top[rel_of])) / tau)
                w_right = np.where(c_right > 0, np.exp((np.log(np.where(c_right > 0, c_right, 1.0))
                                                        - np.log(np.maximum(top[ar2], 1))) / tau), 0.0)
            z = np.bincount(rel_of, weights=w_all, minlength=len(kg.relations))
            guess = np.bincount(aq, weights=w_right / np.maximum(z[ar2], 1e-300), minlength=len(q))
            out[tau][i] = np.where(knows, 1.0, np.minimum(guess, 1.0))
    return out


def appendix_a2(kg: KnowledgeGraph, areas: np.ndarray, train: TwoHopFacts) -> dict:
    """Appendix A.2's comparison, for the record of each run.

    Composing (learning each one-hop fact once, plus a rule per relation pair) is
    cheaper than memorizing two-hop answers when the two-hop training facts
    number at least |F1| + kappa_comp. We take kappa_comp = the number of distinct
    (r1, r2) relation pairs among the training facts (one composition per pair).
    The capacity side: sum_v d_in(v) (= |F1|) against
    sum_i sum_v d_in^(i)(v) d_out^(i)(v), the two-hop paths inside single experts.
    """
    from transcend.world.two_hop import degree_products

    one_hop, within_paths = degree_products(kg, areas)
    kappa = int(len(np.unique(train.r1.astype(np.int64) * len(kg.relations) + train.r2))) if len(train) else 0
    return {
        "train_two_hop_facts": int(len(train)),
        "one_hop_facts": one_hop,
        "kappa_comp": kappa,
        "composition_favoured": bool(len(train) >= one_hop + kappa),
        "sum_in_degree": one_hop,
        "sum_within_expert_in_out": within_paths,
        "within_paths_exceed_one_hop": bool(within_paths >= one_hop),
    }
