"""Hugging Face models in (hf:DIR, hf-config:ARCH), exact multi-token scoring, and export of a lab run.

Every model and tokenizer here is built locally and tiny; nothing is downloaded.
"""

import json
import os

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")  # the [test] extra installs it: CI runs these

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

from transcend.cli import main  # noqa: E402
from transcend.corpus.tokenizer import EOS_ID, build_tokenizer  # noqa: E402
from transcend.corpus.render import template_texts  # noqa: E402
from transcend.evaluate.exact import ExactScorer, LabScorer  # noqa: E402
from transcend.learner.hf import HFCausalLM, HFModelConfig, lab_hf_tokenizer  # noqa: E402
from transcend.learner.log import read_log  # noqa: E402
from transcend.learner.model import GPT, GPTConfig  # noqa: E402
from transcend.world.kg import generate_graph  # noqa: E402

LINES = ["The country of citizenship of Mijior Bridreark is Rugeaar.",
         "The occupation of Ana Lopez is painter. The capital of Veritown is Rugeaar.",
         "What is the capital of the country of citizenship of Ana Lopez? Rugeaar ; Veritown"]
TINY = ["--preset", "tiny", "--entities", "80", "--paragraphs", "400", "--quiet", "--json"]


def bpe_tokenizer(vocab_size: int = 300):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(LINES, trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                                bos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A tiny GPT-2 (a few hundred parameters per layer) with its own byte-level BPE tokenizer."""
    d = tmp_path_factory.mktemp("gpt2")
    tok = bpe_tokenizer()
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=16, n_layer=2, n_head=2,
                                  bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _run(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_hf_dir_fine_tunes_with_its_own_tokenizer_and_scores_exactly(gpt2_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = _run(["run", "denoising", *TINY, "--steps", "30", "--model", f"hf:{gpt2_dir}",
                              "--out", str(out)], capsys)
    assert code == 0, err
    m = json.loads(stdout)
    assert set(m["model_accuracy"]) == {"0", "0.1", "0.5", "1.0", "1.5"}
    assert all(0.0 <= v <= 1.0 for v in m["model_accuracy"].values())
    assert m["learner"]["scoring"] == "ExactScorer"
    rows = read_log(out / "train_log.jsonl")
    assert len(rows) == 30 and rows[-1]["loss"] < rows[0]["loss"]
    # the corpus was re-tokenized: a name is several BPE tokens
    tok = transformers.AutoTokenizer.from_pretrained(gpt2_dir)
    assert len(tok(" Mijior Bridreark")["input_ids"]) > 2


def test_hf_config_llama_with_a_local_tokenizer(gpt2_dir, tmp_path, capsys):
    code, stdout, err = _run(["run", "denoising", *TINY, "--steps", "30", "--model", "hf-config:llama",
                              "--tokenizer", str(gpt2_dir), "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    m = json.loads(stdout)
    assert m["learner"]["scoring"] == "ExactScorer" and len(m["model_accuracy"]) == 5


def test_hf_config_gpt2_on_the_lab_tokenizer_scores_by_the_one_token_rule(tmp_path, capsys):
    code, stdout, err = _run(["run", "denoising", *TINY, "--steps", "20", "--model", "hf-config:gpt2",
                              "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    assert json.loads(stdout)["learner"]["scoring"] == "LabScorer"


@pytest.mark.parametrize("args, message", [
    (["--model", "hf:/no/such/folder"], "is not a folder"),
    (["--model", "hf-config:t5"], "not a transformers causal-LM architecture"),
    (["--model", "bert"], "model must be 'gpt'"),
    (["--tokenizer", "/tmp"], "applies only to an hf-config"),
])
def test_bad_model_is_one_sentence_exit_2_and_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "r"
    code, _, err = _run(["run", "denoising", *TINY, "--steps", "5", *args, "--out", str(out)], capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and not out.exists()


def test_a_model_that_is_not_causal_is_refused(tmp_path, capsys):
    d = tmp_path / "t5"
    transformers.T5Config(vocab_size=50, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2).save_pretrained(d)
    code, _, err = _run(["run", "denoising", *TINY, "--steps", "5", "--model", f"hf:{d}",
                         "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "not a causal language model" in err


def _tiny_lab(seed=0):
    kg = generate_graph(60, seed=1)
    tok = build_tokenizer(kg.entity_names, template_texts(kg))
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.get_vocab_size(), block_size=32, n_layer=1, n_head=2, n_embd=16))
    for p in model.parameters():  # sharpen the random model so that probabilities are far from uniform
        p.data.mul_(8.0)
    return kg, tok, model


def test_exact_rule_agrees_with_the_one_token_path_on_the_lab_tokenizer():
    kg, tok, model = _tiny_lab()
    taus, cpu = [0.0, 0.1, 0.5, 1.0, 1.5], torch.device("cpu")
    exact = ExactScorer(lab_hf_tokenizer(tok), EOS_ID, kg)
    assert exact.atomic
    for entities_only in (False, True):
        a = LabScorer(tok, kg).one_hop(model, taus, cpu, entities_only=entities_only)
        b = exact.one_hop(model, taus, cpu, entities_only=entities_only)
        for t in taus:
            np.testing.assert_allclose(b[t], a[t], atol=1e-9)
        assert a[0.0].sum() > 0 and a[1.0].mean() > 0.01  # not a vacuous agreement


def test_exact_probability_matches_monte_carlo_sampling(gpt2_dir):
    tok = transformers.AutoTokenizer.from_pretrained(gpt2_dir)
    hf = transformers.AutoModelForCausalLM.from_pretrained(gpt2_dir)
    for p in hf.parameters():
        p.data.mul_(6.0)
    model = HFCausalLM(hf, HFModelConfig("t", len(tok), 64))
    kg = generate_graph(60, seed=1)
    scorer = ExactScorer(tok, tok.eos_token_id, kg)
    prompt = scorer.prompts(["The capital of Veritown is"])[0]
    # two answers: the greedy path of three tokens, and the path through the second-best first token
    with torch.no_grad():
        first = model(torch.tensor([prompt]))[0, -1].topk(2).indices.tolist()
        answers = []
        for f in first:
            seq = [f]
            for _ in range(2):
                seq.append(int(model(torch.tensor([prompt + seq]))[0, -1].argmax()))
            answers.append(seq)
    tau = 0.7
    exact = scorer.sequence_scores(model, [prompt], np.array([0, 0]), answers, [tau], torch.device("cpu"))[tau]
    p = float(exact.sum())
    assert 0.05 < p < 0.95
    n, gen = 4000, torch.Generator().manual_seed(0)
    x = torch.tensor([prompt]).repeat(n, 1)
    with torch.no_grad():
        for _ in range(3):
            probs = torch.softmax(model(x)[:, -1] / tau, dim=1)
            x = torch.cat([x, torch.multinomial(probs, 1, generator=gen)], dim=1)
    drawn = x[:, len(prompt):].tolist()
    hits = np.mean([d in answers for d in drawn])
    se = np.sqrt(p * (1 - p) / n)
    assert abs(hits - p) < 4 * se, (hits, p, se)


def test_export_reproduces_the_run_and_continues_as_hf_dir(tmp_path, capsys):
    run, d = tmp_path / "run", tmp_path / "exported"
    code, stdout, err = _run(["run", "denoising", *TINY, "--steps", "30", "--out", str(run)], capsys)
    assert code == 0, err
    m = json.loads(stdout)
    code, _, err = _run(["export", str(run), "--to", str(d)], capsys)
    assert code == 0, err
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in d.iterdir()}
    hf = transformers.AutoModelForCausalLM.from_pretrained(d)
    tok = transformers.AutoTokenizer.from_pretrained(d)
    assert type(hf).__name__ == "GPTNeoXForCausalLM"
    # the run's own model and tokenizer
    from transcend.corpus.store import load_corpus
    from transcend.learner.train import load_checkpoint
    from transcend.pipeline import build_world
    from transcend.config import RunConfig
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    lab = GPT(GPTConfig(**ckpt["gpt"]))
    lab.load_state_dict(ckpt["model"])
    lab.eval()
    corpus = load_corpus(run / "corpus")
    x = torch.from_numpy(corpus.tokens()[:4 * 64].reshape(4, 64))
    with torch.no_grad():
        assert (hf(input_ids=x).logits - lab(x)).abs().max() < 1e-4
    prompt = "The capital of " + corpus.tokenizer.id_to_token(5) + " is"
    assert tok(prompt, add_special_tokens=False)["input_ids"] == corpus.tokenizer.encode(
        prompt, add_special_tokens=False).ids
    # the exported model scored by the same rule gives the run's accuracies
    kg = build_world(RunConfig.load(run / "config.toml"))
    wrapped = HFCausalLM(hf, HFModelConfig("x", hf.config.vocab_size, 64))
    acc = ExactScorer(tok, tok.eos_token_id, kg).one_hop(wrapped, [0.0, 0.1, 0.5, 1.0, 1.5], torch.device("cpu"))
    assert float(acc[0.0].mean()) == m["model_accuracy"]["0"]
    for t, v in acc.items():
        assert float(v.mean()) == pytest.approx(m["model_accuracy"]["0" if t == 0 else repr(t)], abs=1e-6)
    # generate answers a query prompt with the model's greedy next token
    ids = tok([prompt], return_tensors="pt", add_special_tokens=False)["input_ids"]
    gen = hf.generate(torch.cat([torch.tensor([[EOS_ID]]), ids], 1), max_new_tokens=1, do_sample=False)
    with torch.no_grad():
        assert gen[0, -1] == lab(torch.cat([torch.tensor([[EOS_ID]]), ids], 1))[0, -1].argmax()
    # --model hf:DIR continues from the exported weights: its first loss is the run's last, not a fresh start
    code, stdout, err = _run(["run", "denoising", *TINY, "--steps", "5", "--model", f"hf:{d}",
                              "--out", str(tmp_path / "cont")], capsys)
    assert code == 0, err
    first = read_log(tmp_path / "cont" / "train_log.jsonl")[0]["loss"]
    last = np.mean([r["loss"] for r in read_log(run / "train_log.jsonl")[-5:]])
    assert first < 0.5 * read_log(run / "train_log.jsonl")[0]["loss"] and abs(first - last) < 0.5
    # exporting twice into a non-empty folder is refused
    assert _run(["export", str(run), "--to", str(d)], capsys)[0] == 2


def test_two_hop_latent_and_chain_of_thought_agree_with_the_one_token_path():
    from transcend.evaluate import two_hop
    from transcend.evaluate.model_eval import answer_logits, entity_logits_only
    from transcend.world.two_hop import TwoHopFacts

    kg, tok, model = _tiny_lab()
    # questions whose answer is what the model says, so that hits are not all zero
    exact, cpu = ExactScorer(lab_hf_tokenizer(tok), EOS_ID, kg), torch.device("cpu")
    lab = LabScorer(tok, kg)
    R = len(kg.relations)
    a = np.arange(30) % kg.num_entities
    r1, r2 = np.arange(30) % R, (np.arange(30) * 7) % R
    for c_from_model in (False, True):
        c = (np.arange(30) * 5) % kg.num_entities
        paths = TwoHopFacts(a=a, r1=r1, b=c, r2=r2, c=c, edge1=np.zeros(30, int), edge2=np.zeros(30, int))
        q = two_hop.questions_of(paths, R)
        if c_from_model:
            greedy = entity_logits_only(answer_logits(
                model, two_hop._prompts(q, kg, tok, cot=False), cpu), kg.num_entities).argmax(1).numpy() - 3
            paths = TwoHopFacts(a=q.a, r1=q.r1, b=greedy, r2=q.r2, c=greedy, edge1=np.zeros(len(q), int),
                                edge2=np.zeros(len(q), int))
            q = two_hop.questions_of(paths, R)
        np.testing.assert_array_equal(exact.latent(model, q, cpu), lab.latent(model, q, cpu))
        for x, y in zip(exact.cot(model, q, cpu), lab.cot(model, q, cpu)):
            np.testing.assert_array_equal(x, y)
    assert exact.latent(model, q, cpu).mean() == 1.0


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "holds no trained model"),
    (lambda p: (p / "checkpoints").mkdir(parents=True) or (p / "checkpoints" / "latest.pt").write_bytes(b"x"),
     "has not finished training"),
])
def test_export_of_something_that_is_not_a_finished_run_is_refused(tmp_path, capsys, make, message):
    run = tmp_path / "run"
    run.mkdir()
    make(run)
    code, _, err = _run(["export", str(run), "--to", str(tmp_path / "d")], capsys)
    assert code == 2 and message in err and not (tmp_path / "d").exists()


def test_an_interrupted_hf_run_resumes_to_the_same_metrics(gpt2_dir, tmp_path):
    from transcend.config import RunConfig
    from transcend.pipeline import run

    cfg = RunConfig.from_dict({"world": {"preset": "tiny", "entities": 80}, "corpus": {"paragraphs": 300},
                               "model": {"model": f"hf:{gpt2_dir}"},
                               "training": {"steps": 12, "checkpoint_every": 4}, "eval": {"bootstrap": 20}})
    whole = run(cfg, tmp_path / "a", progress=False, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "b", progress=False, stop_after=8, log=lambda m: None)
    resumed = run(cfg, tmp_path / "b", resume=True, progress=False, log=lambda m: None)
    assert resumed["model_accuracy"] == whole["model_accuracy"]
    assert [r["loss"] for r in read_log(tmp_path / "b" / "train_log.jsonl")] == \
        [r["loss"] for r in read_log(tmp_path / "a" / "train_log.jsonl")]


def test_hf_learners_name_the_same_matrices_for_muon_as_the_lab_gpt():
    from transcend.config import ModelConfig
    from transcend.learner.hf import from_config

    sizes = ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=32)
    for arch in ("gpt2", "llama", "gpt_neox"):
        m = HFCausalLM(from_config(arch, sizes, 50, 1, 0), HFModelConfig(arch, 50, 32))
        hidden = m.hidden_matrices()
        assert hidden and all(p.dim() == 2 and p.shape[0] != 50 and p.shape[1] != 50 for p in hidden)
        # every 2-D weight is either hidden or an embedding/head (vocabulary- or position-sized)
        two_d = [p for p in m.parameters() if p.dim() == 2]
        assert len(two_d) - len(hidden) in (1, 2, 3)


def test_latent_two_hop_with_bpe_names_is_constrained_greedy_decoding(gpt2_dir):
    """Teacher-forced scoring among entity names equals decoding greedily inside the names' trie."""
    from transcend.corpus.phrasing import TWO_HOP_TEMPLATES
    from transcend.evaluate import two_hop
    from transcend.world.two_hop import TwoHopFacts

    tok = transformers.AutoTokenizer.from_pretrained(gpt2_dir)
    hf = transformers.AutoModelForCausalLM.from_pretrained(gpt2_dir)
    for p in hf.parameters():
        p.data.mul_(6.0)
    model = HFCausalLM(hf, HFModelConfig("t", len(tok), 64))
    kg = generate_graph(60, seed=1)
    scorer = ExactScorer(tok, tok.eos_token_id, kg)
    assert not scorer.atomic
    n, R = 12, len(kg.relations)
    a, r1, r2 = np.arange(n), np.arange(n) % R, (np.arange(n) * 5) % R
    tmpl = TWO_HOP_TEMPLATES[0]
    names = scorer.name_tokens("x {tail}", tmpl[tmpl.index("{c}") + 3:])
    trie = scorer._allowed(names)
    rel = [r.name for r in kg.relations]
    pre = tmpl[: tmpl.index("{c}")].rstrip()
    decoded = []
    with torch.no_grad():
        for i in range(n):
            prompt = scorer.prompts([pre.format(r1=rel[r1[i]], r2=rel[r2[i]], a=kg.entity_names[a[i]])])[0]
            seq = []
            while tuple(seq) in trie:
                logits = model(torch.tensor([prompt + seq]))[0, -1]
                allowed = trie[tuple(seq)]
                seq.append(int(allowed[int(logits[allowed].argmax())]))
            decoded.append(names.index(seq))
    c = np.where(np.arange(n) % 2 == 0, decoded, (np.array(decoded) + 1) % kg.num_entities)
    paths = TwoHopFacts(a=a, r1=r1, b=c, r2=r2, c=c, edge1=np.zeros(n, int), edge2=np.zeros(n, int))
    q = two_hop.questions_of(paths, R)
    got = scorer.latent(model, q, torch.device("cpu"))
    want = np.zeros(len(q))
    for p_i, qi in enumerate(q.path_question):
        want[qi] = float(q.paths.c[p_i] == decoded[int(np.flatnonzero((a == q.paths.a[p_i]) & (r1 == q.paths.r1[p_i])
                                                                      & (r2 == q.paths.r2[p_i]))[0])])
    np.testing.assert_array_equal(got, want)
    assert want.sum() == (n + 1) // 2


@pytest.mark.parametrize("mode", ["denoising", "generalization"])
def test_windows_start_at_every_sentence_with_a_bpe_tokenizer(gpt2_dir, tmp_path, mode):
    """With its own tokenizer a model's windows start where the lab's do (every sentence), and each window led
    by the separator holds exactly the tokens a query prompt is scored by."""
    from transcend.config import RunConfig
    from transcend.learner.train import Batches, window_starts
    from transcend.pipeline import build_corpus, build_learner, build_panel, build_world, sentence_end_ids

    extra = {"two_hop": {"train": 20, "validation": 5, "phrasing": 2}} if mode == "generalization" else {}
    cfg = RunConfig.from_dict({"mode": mode, "world": {"preset": "tiny", "entities": 60},
                               "corpus": {"paragraphs": 40}, "model": {"model": f"hf:{gpt2_dir}"}, **extra})
    kg = build_world(cfg)
    panel = build_panel(cfg, kg, tmp_path / "cache")
    corpus = build_corpus(cfg, kg, panel, tmp_path / "corpus", log=lambda m: None)
    model, stream, special, scorer = build_learner(cfg, kg, panel, corpus)
    lab_stream = corpus.tokens()
    lab, _ = window_starts(lab_stream, 1 << 30, sentence_end_ids(corpus.tokenizer))
    ours, _ = window_starts(stream, 1 << 30, eos_id=special["eos_id"], sentence_starts=special["sentence_starts"])
    paragraphs_only, _ = window_starts(stream, 1 << 30, eos_id=special["eos_id"])
    assert len(ours) == len(lab) > len(paragraphs_only)  # one window per sentence, as for the lab's tokenizer
    if mode == "denoising":
        assert len(ours) == len(corpus.writing.sent_head)  # every written sentence starts one
    tok = scorer.tok
    batches = Batches(stream, 512, len(ours), 0, eos_id=special["eos_id"], pad_id=special["pad_id"],
                      sentence_starts=special["sentence_starts"])
    assert len(batches.starts) == len(ours)  # a window longer than any sentence: no starts but the sentences'
    x, _ = batches(0)  # the first pass, whole: every sentence start once, led by the separator
    assert (x[:, 0] == special["eos_id"]).all()
    checked = 0
    for row in x.tolist():
        text = tok.decode(row[1:])
        sentence = text[:text.index(".") + 1] if "." in text else text
        # the window's first sentence is a sentence of the lab corpus, tokenized as that sentence alone
        assert row[1:1 + len(tok(sentence)["input_ids"])] == tok(sentence)["input_ids"]
        if sentence.startswith("The ") and " is " in sentence and mode == "denoising":
            prompt = sentence[:sentence.rindex(" is ") + 3]
            assert row[:len(scorer.prompts([prompt])[0])] == scorer.prompts([prompt])[0]  # the query's prompt
            checked += 1
    if mode == "denoising":
        assert checked == len(ours)


class _Writes(torch.nn.Module):
    """A stand-in model that continues each known prompt with its own script of tokens (then repeats the last)."""

    def __init__(self, scripts: dict[tuple, list[int]], vocab: int):
        super().__init__()
        self.scripts, self.vocab = scripts, vocab
        self.cfg = type("C", (), {"block_size": 1 << 12, "vocab_size": vocab})()

    def forward(self, x):
        logits = torch.zeros(x.shape[0], x.shape[1], self.vocab)
        for row, ids in enumerate(x.tolist()):
            prompt = next(p for p in self.scripts if tuple(ids[:len(p)]) == p)
            script = self.scripts[prompt]
            logits[row, -1, script[min(len(ids) - len(prompt), len(script) - 1)]] = 1.0
        return logits


def test_chain_of_thought_with_bpe_names_reads_the_bridge_the_answer_and_the_end(gpt2_dir):
    """Greedy chain of thought with names of several tokens: a model that writes what it was trained on (the
    corpus's chain-of-thought unit, re-tokenized as the pipeline does, then the next unit's end-of-text) gets
    bridge and answer right; swapped names, no end (nothing counts), or more after the answer (the bridge
    counts, the answer not) are scored as the rule says."""
    from transcend.corpus.phrasing import COT_QUESTION, cot_example
    from transcend.evaluate import two_hop
    from transcend.learner.hf import tokenize_texts
    from transcend.world.two_hop import TwoHopFacts

    tok = transformers.AutoTokenizer.from_pretrained(gpt2_dir)
    eos = tok.eos_token_id
    kg = generate_graph(60, seed=1)
    scorer = ExactScorer(tok, eos, kg)
    assert not scorer.atomic
    n, R, names = 8, len(kg.relations), kg.entity_names
    a, r1, r2 = np.arange(n), np.arange(n) % R, (np.arange(n) * 5 + 1) % R
    b, c = a + 20, a + 40
    assert all(len(tok(" " + names[e])["input_ids"]) > 1 for e in np.r_[b, c])  # several tokens a name
    paths = TwoHopFacts(a=a, r1=r1, b=b, r2=r2, c=c, edge1=np.zeros(n, int), edge2=np.zeros(n, int))
    q = two_hop.questions_of(paths, R)
    rel = [r.name for r in kg.relations]
    rng = np.random.default_rng(0)
    kinds = ["copy", "swap", "no end", "more"] * (n // 4)
    scripts, want_answer, want_bridge = {}, np.zeros(len(q)), np.zeros(len(q))
    for i in range(len(q)):
        p = int(np.flatnonzero(q.path_question == i)[0])
        x, y, z = int(q.a[i]), int(q.paths.b[p]), int(q.paths.c[p])
        unit = cot_example(rel[q.r1[i]], rel[q.r2[i]], names[x], names[y], names[z], 1, rng)
        stream, _ = tokenize_texts([[unit]], tok, eos)  # the unit as the model trains on it
        prompt = scorer.prompts([COT_QUESTION.format(r1=rel[q.r1[i]], r2=rel[q.r2[i]], a=names[x])])[0]
        assert stream[:len(prompt)].tolist() == prompt  # the question is the prompt, token for token
        trained = stream[len(prompt):].tolist() + [eos]
        kind = kinds[i]
        script = {"copy": trained,
                  "swap": tok(f" {names[z]} ; {names[y]}")["input_ids"] + [eos],
                  "no end": trained[:-1],
                  "more": trained[:-1] + tok(".")["input_ids"] + [eos]}[kind]
        scripts[tuple(prompt)] = script
        want_answer[i] = float(kind == "copy")
        want_bridge[i] = float(kind in ("copy", "more"))
    answer, bridge = scorer.cot(_Writes(scripts, len(tok)), q, torch.device("cpu"))
    np.testing.assert_array_equal(answer, want_answer)
    np.testing.assert_array_equal(bridge, want_bridge)


def test_cli_generalization_with_chain_of_thought_and_a_bpe_model(gpt2_dir, tmp_path, capsys):
    out = tmp_path / "g"
    code, stdout, err = _run(["run", "generalization", "--entities", "80", "--experts", "4", "--two-hop", "30",
                              "--validation", "8", "--repeat", "2", "--cot", "--paragraphs", "200", "--steps", "8",
                              "--model", f"hf:{gpt2_dir}", "--quiet", "--json", "--out", str(out)], capsys)
    assert code == 0, err
    m = json.loads(stdout)
    assert m["two_hop_config"]["cot"] is True and m["learner"]["scoring"] == "ExactScorer"
    for split in ("within", "across"):
        s = m["two_hop"][split]
        assert s["questions"] > 0 and 0 <= s["model_accuracy"] <= 1 and 0 <= s["bridge_accuracy"] <= 1
    assert len(read_log(out / "train_log.jsonl")) == 8
