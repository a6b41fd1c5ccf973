"""TensorFlow checks of the analysis model, run in a child: TF and torch crash in one process.

`python tests/studies/tf_analysis_probe.py` prints one JSON object that
tests/studies/test_analyze.py asserts.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from nnr_profile.core.modes import MODES
from nnr_profile.studies.analysis import open_analysis
from nnr_profile.workloads.tf import training

ARGS = {"norm": "batch", "dropout": 0.3}
EXAMPLES = 512


def main() -> int:
    """Train an MLP with BatchNorm and dropout; reload its weights elsewhere; take gradients."""
    model, _, _ = open_analysis("tf", "mlp", "digits", None, MODES["default"], None, 0, ARGS)
    model.train(2, 32, 0.05, 1)
    trained = model.loss(EXAMPLES)
    flat = training.flat_weights(model.model)
    fresh, _, _ = open_analysis("tf", "mlp", "digits", None, MODES["default"], None, 5, ARGS)
    training.load_flat_weights(fresh.model, flat)
    stale = fresh.loss(EXAMPLES)  # the fresh model's own moving statistics
    fresh.load_flat(flat)
    index = np.arange(32)
    first, again, other = (model.gradient(index, seed) for seed in (7, 7, 8))
    print(
        json.dumps(
            {
                "trained_loss": trained,
                "stale_loss": stale,
                "recomputed_loss": fresh.loss(EXAMPLES),
                "same_seed_equal": all(
                    np.array_equal(a, b) for a, b in zip(first, again, strict=True)
                ),
                "other_seed_differs": any(
                    not np.array_equal(a, b) for a, b in zip(first, other, strict=True)
                ),
                "sizes_match": [g.size for g in first] == [w.size for w in model.weights()],
                "kernel_shapes": [list(w.shape) for w in model.weights() if w.ndim == 2],
                "filter_axis": model.filter_axis,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
