"""transcend: a lab for studying transcendence.

The package reads as the pipeline it runs::

    world -> experts -> corpus -> learner -> evaluate -> results -> report
"""

__version__ = "0.1.0"
