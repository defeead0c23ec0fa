"""The demo's training step, shared by the benchmarks that time it or take it as their reference
(bench_step, bench_threads, bench_data_parallel, bench_demo, bench_selection, bench_generalization):
the default config's model and batch, and the default world's vocabulary.

The vocabulary (1,058 tokens) is what the default world's tokenizer measures (`transcend demo`'s
corpus); the window (16 tokens) is what the default corpus derives (`training.window = 0`). Both are
fixed here so the benchmarks build the step without generating a corpus.
"""

from transcend.config import RunConfig
from transcend.learner.model import GPTConfig

VOCAB = 1058  # the default world's vocabulary
WINDOW = 16  # the window the default corpus derives


def demo_shape(n_head: int | None = None) -> tuple[GPTConfig, int, int]:
    """(model config, windows a step, tokens a window) of the demo's training step (``n_head`` heads
    instead of the default's)."""
    cfg = RunConfig()
    m = cfg.model
    return (GPTConfig(vocab_size=VOCAB, block_size=m.block_size, n_layer=m.n_layer, n_head=n_head or m.n_head,
                      n_embd=m.n_embd), cfg.training.batch_size, WINDOW)


def demo_step_setup(n_head: int | None = None):
    """(model, optimizers, training config, batch) of the demo's step on random tokens, seeded: the
    model and optimizers as the demo trains them (Muon for hidden matrices, AdamW for the rest); with
    ``n_head``, that many attention heads."""
    import torch

    from transcend.config import TrainingConfig
    from transcend.learner.model import GPT
    from transcend.learner.train import make_optimizers

    torch.manual_seed(0)
    gcfg, rows, cols = demo_shape(n_head)
    model, tcfg = GPT(gcfg), TrainingConfig(steps=1000)
    opts = make_optimizers(model, tcfg, torch.device("cpu"))
    x = torch.randint(0, gcfg.vocab_size, (rows, cols), generator=torch.Generator().manual_seed(0))
    return model, opts, tcfg, x


def demo_step(model, opts, tcfg, x, forward=None) -> None:
    """One training step as the demo takes it: zero, loss over the batch, backward, clip, every optimizer.
    ``forward`` is what computes the logits (the model itself, or a compiled wrapper of it)."""
    import torch
    import torch.nn.functional as F

    for o in opts:
        o.zero_grad(set_to_none=True)
    F.cross_entropy((model if forward is None else forward)(x).flatten(0, 1), x.flatten()).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
    for o in opts:
        o.step()


def demo_step_seconds(steps: int = 100) -> float:
    """Seconds a step of the demo's training step on one torch thread (random tokens; model, batch,
    optimizers and clipping as the demo trains), after five warm-up steps: the machine's speed at the
    demo's workload, measured in the run that times the demo."""
    import time

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, opts, tcfg, x = demo_step_setup()

        def run(n: int) -> None:
            for _ in range(n):
                demo_step(model, opts, tcfg, x)

        run(5)
        t = time.perf_counter()
        run(steps)
        return (time.perf_counter() - t) / steps
    finally:
        torch.set_num_threads(threads)
