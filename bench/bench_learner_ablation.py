"""Learner ablation: one world/experts/corpus (cached under --cache), one training recipe, model vs ideal learner.

Prints one JSON line: the recipe, training seconds, the load average, model and ideal learner at greedy
and at tau = 1 (docs/learner.md tabulates these). Runs with one torch thread unless THREADS is set.

    python bench/bench_learner_ablation.py --entities 300 --paragraphs 6000 --steps 1000 --opt muon
"""
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np, torch
from transcend.config import RunConfig, ExpertsConfig, CorpusConfig, TrainingConfig, ModelConfig, WorldConfig
from transcend import pipeline as P
from transcend.learner.model import GPT, GPTConfig
from transcend.learner import train as T
from transcend.evaluate.model_eval import model_accuracy
from transcend.evaluate.ideal import ideal_accuracy
from transcend.evaluate.experts_eval import expert_accuracy, best_expert

ap = argparse.ArgumentParser()
ap.add_argument("--experts", type=int, default=10); ap.add_argument("--coverage", type=float, default=0.4)
ap.add_argument("--seed", type=int, default=0); ap.add_argument("--entities", type=int, default=None)
ap.add_argument("--paragraphs", type=int, default=20000); ap.add_argument("--steps", type=int, default=3000)
ap.add_argument("--batch", type=int, default=64); ap.add_argument("--window", type=int, default=0); ap.add_argument("--lr", type=float, default=5e-3)
ap.add_argument("--muon-lr", type=float, default=5e-3); ap.add_argument("--opt", default="muon")
ap.add_argument("--warmup", type=int, default=100); ap.add_argument("--layers", type=int, default=2)
ap.add_argument("--embd", type=int, default=128); ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--block", type=int, default=64); ap.add_argument("--windows", default="sentence")
ap.add_argument("--wd", type=float, default=0.0); ap.add_argument("--min-lr", type=float, default=0.01)
ap.add_argument("--triples", default=None); ap.add_argument("--save", default=None, help="save the trained weights here"); ap.add_argument("--tag", default="")
ap.add_argument("--cache", default="/tmp/transcend-ablation", help="folder for corpora and checkpoints")
a = ap.parse_args()
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
cfg = RunConfig(seed=a.seed, world=WorldConfig(entities=a.entities, triples=a.triples),
                experts=ExpertsConfig(experts=a.experts, coverage=a.coverage),
                corpus=CorpusConfig(paragraphs=a.paragraphs),
                model=ModelConfig(n_layer=a.layers, n_head=a.heads, n_embd=a.embd, block_size=a.block),
                training=TrainingConfig(steps=a.steps, batch_size=a.batch, lr=a.lr, muon_lr=a.muon_lr, optimizer=a.opt, window=a.window,
                                        warmup_steps=a.warmup, weight_decay=a.wd, min_lr_ratio=a.min_lr,
                                        checkpoint_every=10**9))
kg = P.build_world(cfg); panel = P.build_panel(cfg, kg)
cdir = Path(a.cache) / P.corpus_key(cfg)
corpus = P.build_corpus(cfg, kg, panel, cdir)
torch.manual_seed(cfg.seed)
model = GPT(GPTConfig(vocab_size=corpus.manifest["vocab_size"], block_size=a.block, n_layer=a.layers, n_head=a.heads, n_embd=a.embd))
taus = [0.0, 1.0]
iq = ideal_accuracy(corpus.writing, kg, taus)
best = best_expert(expert_accuracy(panel, taus))[2]
bids = P.sentence_end_ids(corpus.tokenizer) if a.windows == "sentence" else ()
ck = Path(a.cache) / f"ck-{os.getpid()}"
t0 = time.perf_counter()
res = T.train(model, corpus.tokens(), cfg.training, ck, seed=cfg.seed, progress=False, boundary_ids=bids)
secs = time.perf_counter() - t0
if a.save:
    torch.save(model.state_dict(), a.save)
mq = model_accuracy(model, kg, corpus.tokenizer, taus, torch.device("cpu"))
m0, m1, i0, i1 = (float(x[t].mean()) for x, t in ((mq, 0.0), (mq, 1.0), (iq, 0.0), (iq, 1.0)))
out = dict(tag=a.tag, **{k: v for k, v in vars(a).items() if k != "tag"}, secs=round(secs, 1),
           load=open("/proc/loadavg").read().split()[0], tokens=int(corpus.manifest["num_tokens"]),
           queries=int(corpus.manifest["num_queries"]), model0=round(m0, 4), ideal0=round(i0, 4), frac0=round(m0 / i0, 4),
           model1=round(m1, 4), ideal1=round(i1, 4), d1=round(m1 - i1, 4), best=round(float(best), 4),
           loss=round(float(np.mean(res["losses"][-50:])), 4))
print(json.dumps(out))
import shutil; shutil.rmtree(ck, ignore_errors=True)
