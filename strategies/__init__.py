"""The math of multi-task learning, importable as ``polytask.strategies``.

Two axes, after LibMTL: ``weighting`` (how task losses or gradients are combined) and
``sharing`` (which parameters the tasks share). This package imports only torch, so every
strategy can be tested on CPU with tiny tensors.
"""
