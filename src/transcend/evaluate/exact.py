"""Exact accuracy with any tokenizer: answers of several tokens, scored without sampling.

With a model's own tokenizer (BPE) an entity name is several tokens. The
probability that sampling at temperature τ writes a correct answer is, summed
over the correct answers y, the product along y's tokens and the token that
ends it of the tempered softmax at the teacher-forced positions:

    P_τ(correct | prompt) = Σ_y Π_j softmax(logits_j / τ)[y_j],   y = tokens(" " + name + end)

The end token ("." after a one-hop or latent two-hop answer, end-of-text after
a chain-of-thought answer) makes the answers prefix-free, so the events are
disjoint and the sum is exact. Greedy (τ = 0) scores 1 when greedy decoding
writes a correct answer and then the end: every teacher-forced arg-max is the
answer's token.

What "exact" assumes: the answer is written in its **canonical tokenization**
(what the tokenizer gives for the sentence, split after the prompt). A sampler
may reach the same text through other token sequences (BPE pieces merge in
more than one way); that mass is not counted, which is also what training on
canonically tokenized text teaches a model to give almost nothing.

With the lab's word-level tokenizer every name is one atomic token that
nothing can extend, so the answer ends with its token and no end factor is
multiplied: this is exactly the one-token rule of ``model_eval`` (a test checks
that both agree). ``entities_only`` restricts, as the generalization mode does,
each step to the tokens that continue some entity name (a trie over the names'
tokenizations), which for one-token names is the softmax among entity tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from transcend.corpus.phrasing import COT_ANSWER, COT_QUESTION, TWO_HOP_TEMPLATES
from transcend.world.kg import KnowledgeGraph

TAIL = "{tail}"


class ExactScorer:
    """Scores a model through a ``transformers`` tokenizer; ``atomic`` names are single tokens (lab's)."""

    def __init__(self, tok, eos_id: int, kg: KnowledgeGraph, *, atomic: bool | None = None):
        self.tok, self.eos_id, self.kg = tok, eos_id, kg
        added = set(tok.get_added_vocab())
        self.atomic = all(n in added for n in kg.entity_names) if atomic is None else atomic
        self._names: dict[tuple[str, str], list[list[int]]] = {}

    # -- tokenization -------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def split(self, full: str, cut: int) -> tuple[list[int], list[int]]:
        """(prompt ids, continuation ids) of ``full`` cut at character ``cut``, canonical tokenization."""
        ids, prompt = self.encode(full), self.encode(full[:cut].rstrip())
        if ids[:len(prompt)] != prompt:  # a token spans the cut: tokenize the continuation on its own
            return prompt, self.encode(full[len(full[:cut].rstrip()):])
        return prompt, ids[len(prompt):]

    def name_tokens(self, template: str, end: str) -> list[list[int]]:
        """Continuation tokens of every entity name in ``template`` (name then ``end``), computed once.

        Assumes the pre-tokenizer splits at the space before the answer, so the name's tokens do not
        depend on the prompt (true of byte-level BPE and of the lab's tokenizer)."""
        key = (template, end)
        if key not in self._names:
            if self.atomic:
                vocab = self.tok.get_vocab()
                self._names[key] = [[vocab[n]] for n in self.kg.entity_names]
            else:
                pre = template[: template.index(TAIL)]
                self._names[key] = [self.split(pre + n + end, len(pre))[1] for n in self.kg.entity_names]
        return self._names[key]

    def prompts(self, texts: list[str]) -> list[list[int]]:
        return [[self.eos_id, *ids] for ids in self.tok(texts, add_special_tokens=False)["input_ids"]]

    # -- scoring --------------------------------------------------------------------------------------
    @torch.no_grad()
    def sequence_scores(self, model, prompts: list[list[int]], answer_of: np.ndarray, answers: list[list[int]],
                        temperatures: list[float], device: torch.device, allowed: dict | None = None,
                        batch_size: int = 256) -> dict[float, np.ndarray]:
        """P_τ(answers[i] | prompts[answer_of[i]]) for every answer i, per τ (τ = 0: the greedy indicator).

        ``allowed`` maps a prefix (tuple) of answer tokens to the token ids that may follow it (entities
        only); None allows every token."""
        model.eval()
        seqs = [prompts[p] + a for p, a in zip(answer_of, answers)]
        starts = np.array([len(prompts[p]) for p in answer_of])
        lengths = np.array([len(s) for s in seqs])
        out = {t: np.zeros(len(seqs)) for t in temperatures}
        block = model.cfg.block_size
        for L in np.unique(lengths):
            idx = np.flatnonzero(lengths == L)
            rows_per_batch = max(1, min(batch_size, int(2**25 // (L * model.cfg.vocab_size))))  # ~128 MB of logits
            for lo in range(0, len(idx), rows_per_batch):
                chunk = idx[lo:lo + rows_per_batch]
                x = torch.tensor([seqs[i][:-1] for i in chunk], dtype=torch.long, device=device)[:, -block:]
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    logits = model(x)
                shift = (L - 1) - x.shape[1]  # positions cut off the left by the context limit
                for row, i in enumerate(chunk):
                    a = answers[i]
                    pos = torch.from_numpy(np.arange(starts[i] - 1, L - 1) - shift).to(logits.device)
                    lg = logits[row, pos].float().cpu().double()  # (len(a), V): the logits predicting each token
                    if allowed is not None:
                        mask = torch.full_like(lg, float("-inf"))
                        for j in range(len(a)):
                            ok = allowed[tuple(a[:j])]
                            mask[j, ok] = 0.0
                        lg = lg + mask
                    target = torch.tensor(a)
                    for tau in temperatures:
                        if tau == 0:
                            out[tau][i] = float(bool((lg.argmax(dim=1) == target).all()))
                        else:
                            lp = torch.log_softmax(lg / tau, dim=1).gather(1, target[:, None]).sum()
                            out[tau][i] = float(lp.exp())
        return out

    def _allowed(self, names: list[list[int]]) -> dict[tuple, np.ndarray]:
        nxt: dict[tuple, set] = {}
        for seq in names:
            for j in range(len(seq)):
                nxt.setdefault(tuple(seq[:j]), set()).add(seq[j])
        return {k: np.array(sorted(v)) for k, v in nxt.items()}

    def accuracy(self, model, prompt_texts: list[str], correct: list[np.ndarray], template: str, end: str,
                 temperatures: list[float], device: torch.device, entities_only: bool = False
                 ) -> dict[float, np.ndarray]:
        """Per prompt: the probability (τ > 0) or the greedy indicator (τ = 0) of a correct answer.

        ``correct[q]`` holds the entity indices correct for prompt q; ``template`` ends in '{tail}'."""
        names = self.name_tokens(template, end if not self.atomic else "")
        answer_of = np.repeat(np.arange(len(correct)), [len(c) for c in correct])
        flat = np.concatenate(correct).astype(np.int64) if len(correct) else np.zeros(0, np.int64)
        allowed = self._allowed(names) if entities_only else None
        per = self.sequence_scores(model, self.prompts(prompt_texts), answer_of, [names[c] for c in flat],
                                   temperatures, device, allowed)
        return {t: np.bincount(answer_of, weights=v, minlength=len(correct)) for t, v in per.items()}

    # -- the lab's questions ---------------------------------------------------------------------------
    def one_hop(self, model, temperatures: list[float], device: torch.device, entities_only: bool = False
                ) -> dict[float, np.ndarray]:
        kg = self.kg
        qh, qr = kg.queries
        tmpl = kg.relations[0].templates[0]
        end = tmpl[tmpl.index(TAIL) + len(TAIL):]
        texts = [kg.relations[r].prompt(kg.entity_names[h]) for h, r in zip(qh, qr)]
        bounds = np.searchsorted(kg.edge_query, np.arange(len(qh) + 1))
        correct = [kg.tails[bounds[q]:bounds[q + 1]] for q in range(len(qh))]
        return self.accuracy(model, texts, correct, "The r of h is " + TAIL, end, temperatures, device,
                             entities_only)

    def latent(self, model, q, device: torch.device) -> np.ndarray:
        """Greedy two-hop accuracy of questions ``q`` (evaluate.two_hop.Questions), among entities."""
        if len(q) == 0:
            return np.zeros(0)
        kg, rel = self.kg, [r.name for r in self.kg.relations]
        tmpl = TWO_HOP_TEMPLATES[0]
        pre = tmpl[: tmpl.index("{c}")].rstrip()
        texts = [pre.format(r1=rel[r1], r2=rel[r2], a=kg.entity_names[a]) for a, r1, r2 in zip(q.a, q.r1, q.r2)]
        correct = [q.paths.c[q.path_question == i] for i in range(len(q))]
        end = tmpl[tmpl.index("{c}") + 3:]
        return np.minimum(self.accuracy(model, texts, correct, "x " + TAIL, end, [0.0], device, True)[0.0], 1.0)

    @torch.no_grad()
    def cot(self, model, q, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
        """Greedy chain of thought, per question: (the answer after ';' is correct, the bridge is correct).

        Names of several tokens: the answer must be followed by the end of the text (end-of-text token).
        One-token names (the lab's tokenizer): the token after the first ';' and the first token, as
        ``two_hop.cot_accuracy`` reads them."""
        if len(q) == 0:
            return np.zeros(0), np.zeros(0)
        from transcend.evaluate.model_eval import length_batches, next_token_logits
        from transcend.evaluate.two_hop import COT_MAX_TOKENS

        kg, rel = self.kg, [r.name for r in self.kg.relations]
        longest = max(len(s) for s in self.name_tokens("x " + TAIL, ""))
        budget = COT_MAX_TOKENS if self.atomic else 2 * longest + len(self.encode(COT_ANSWER.format(b="", c=""))) + 2
        prompts = [np.asarray(p) for p in self.prompts(
            [COT_QUESTION.format(r1=rel[r1], r2=rel[r2], a=kg.entity_names[a]) for a, r1, r2 in zip(q.a, q.r1, q.r2)])]
        model.eval()
        bridges, answers = [""] * len(q), [None] * len(q)
        for chunk, x in length_batches(prompts, 256, device):
            start = x.shape[1]
            for _ in range(budget):
                x = torch.cat([x, next_token_logits(model, x, device).argmax(dim=1)[:, None]], dim=1)
            for row, i in enumerate(chunk):
                gen = x[row, start:].tolist()
                if self.atomic:
                    pieces = [self.tok.decode([g]).strip() for g in gen]
                    bridges[i] = pieces[0]
                    if ";" in pieces[:-1]:
                        answers[i] = pieces[pieces.index(";") + 1]
                    continue
                if self.eos_id not in gen:
                    continue
                bridge, sep, answer = self.tok.decode(gen[:gen.index(self.eos_id)]).partition(";")
                bridges[i] = bridge.strip()
                if sep:
                    answers[i] = answer.strip()
        names = kg.entity_names
        answer_ok, bridge_ok = np.zeros(len(q)), np.zeros(len(q))
        for p, i in enumerate(q.path_question):
            bridge_ok[i] = max(bridge_ok[i], float(bridges[i] == names[q.paths.b[p]]))
            answer_ok[i] = max(answer_ok[i], float(answers[i] == names[q.paths.c[p]]))
        return answer_ok, bridge_ok

class LabScorer:
    """The one-token rule of ``model_eval``/``two_hop`` through the lab's own tokenizer (the default path)."""

    def __init__(self, tok, kg: KnowledgeGraph):
        self.tok, self.kg = tok, kg

    def one_hop(self, model, temperatures, device, entities_only: bool = False):
        from transcend.evaluate.model_eval import model_accuracy

        return model_accuracy(model, self.kg, self.tok, temperatures, device, entities_only=entities_only)

    def latent(self, model, q, device):
        from transcend.evaluate.two_hop import latent_accuracy

        return latent_accuracy(model, q, self.kg, self.tok, device)

    def cot(self, model, q, device):
        from transcend.evaluate.two_hop import cot_accuracy

        return cot_accuracy(model, q, self.kg, self.tok, device)
