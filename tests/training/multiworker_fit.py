"""Train a tiny pix2pix for a few steps with `kerastrans.training.fit`; print a JSON summary.

Run as a script in its own process (``python multiworker_fit.py DATASET RUN_DIR
STRATEGY``), one process per worker with ``TF_CONFIG`` set for
``multiworker``: a `MultiWorkerMirroredStrategy` must be created before
TensorFlow starts, which the test process has already done. Prints
``{"weights": [...], "loss": ..., "chief_files": [...]}`` with the sum and
the sum of squares of every trained variable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kerastrans.training import fit, make_strategy

STEPS = 2


def main(dataset: str, run_dir: str, strategy_name: str) -> None:
    strategy = make_strategy(strategy_name)  # first of all, before any TensorFlow work
    import numpy as np

    from kerastrans.config import Config, DataConfig, ModelConfig, TrainingConfig

    config = Config(
        # shuffle_buffer=1 and no augmentation: the global batch holds the same
        # examples however the dataset is sharded over workers.
        data=DataConfig(dataset=dataset, batch_size=2, seed=5, shuffle_buffer=1),
        # float32: the workers and the single process must agree to float32 rounding,
        # which "auto" would coarsen to bfloat16's on machines that compute it natively.
        model=ModelConfig(
            precision="float32",
            generator={"depth": 2, "base_channels": 4, "norm": "none"},
            discriminator={"base_channels": 4, "depth": 1, "norm": "none"},
        ),
        training=TrainingConfig(
            epochs=1, steps_per_epoch=STEPS, checkpoint_every=1, grid_images=1,
            g_learning_rate=1e-3, d_learning_rate=1e-3,
        ),
    )  # fmt: skip
    result = fit(config, run_dir, strategy=strategy, progress=False)
    weights = [
        [float(np.sum(w)), float(np.sum(np.square(w)))]
        for w in (v.numpy() for v in result.model.trainable_weights)
    ]
    summary = {
        "weights": weights,
        "history": result.history[-1],
        "iterations": int(result.model.g_optimizer.iterations.numpy()),
        "files": sorted(p.name for p in Path(run_dir).iterdir()) if Path(run_dir).exists() else [],
    }
    print("RESULT " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
