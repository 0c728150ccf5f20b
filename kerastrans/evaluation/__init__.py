"""The parts of `kerastrans.evaluate.evaluate`, one job each.

- ``report``: `EvaluationReport` (metrics per image, markdown, CSV, figure),
  the metric columns and `Sample`;
- ``examples``: the examples of a dataset split as NumPy arrays (2.5D stacks);
- ``baselines``: what a model is compared with (the input, FBP of sinograms).

Import the public names from `kerastrans.evaluate`.
"""
