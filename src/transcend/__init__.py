"""transcend: a lab for studying transcendence.

The package reads as the pipeline it runs::

    world -> experts -> corpus -> learner -> evaluate -> results -> report
"""

import os as _os

# OpenMP threads that finish their share of a kernel sleep instead of spinning: beside another busy
# process, spinning threads take the core that the slowest thread needs and training slowed 6x on
# 2 cores (bench/bench_threads.py). Set before torch loads its OpenMP runtime; a user's setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__version__ = "0.1.0"
