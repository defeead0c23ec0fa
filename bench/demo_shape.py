"""The demo's training step shape, shared by the step benchmarks (bench_step, bench_threads,
bench_data_parallel): the default config's model and batch, and the default world's vocabulary.

The vocabulary (1,058 tokens) is what the default world's tokenizer measures (`transcend demo`'s
corpus); the window (16 tokens) is what the default corpus derives (`training.window = 0`). Both are
fixed here so the benchmarks build the step without generating a corpus.
"""

from transcend.config import RunConfig
from transcend.learner.model import GPTConfig

VOCAB = 1058  # the default world's vocabulary
WINDOW = 16  # the window the default corpus derives


def demo_shape() -> tuple[GPTConfig, int, int]:
    """(model config, windows a step, tokens a window) of the demo's training step."""
    cfg = RunConfig()
    m = cfg.model
    return (GPTConfig(vocab_size=VOCAB, block_size=m.block_size, n_layer=m.n_layer, n_head=m.n_head,
                      n_embd=m.n_embd), cfg.training.batch_size, WINDOW)
