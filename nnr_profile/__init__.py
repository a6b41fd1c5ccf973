"""nnr-profile: the cost of deterministic training and the effect of non-deterministic training."""

__version__ = "0.1.0"
