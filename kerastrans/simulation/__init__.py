"""Simulated CT datasets: the library behind ``kerastrans simulate`` and the demo.

- ``sources``: the images to simulate from (`open_source`: a phantom, a
  kerastrans dataset or an image folder; `phantom_to_hu`);
- ``tasks``: each task as a `Simulation` (lazy records, metadata,
  description) that `Simulation.write` turns into a dataset, and
  `lowdose_records`, the low-dose step the demo uses too.

Importing this package imports neither TensorFlow, TFDS nor ODL (the command
line builds its parser from `PHANTOMS` and `SPLITS`); the tasks load them
when they run.
"""

from kerastrans.simulation.sources import PHANTOMS, Source, open_source, phantom_to_hu
from kerastrans.simulation.tasks import (
    NOTHING_TO_WRITE,
    SPLITS,
    Simulation,
    ellipses_simulation,
    fine_shape,
    lowdose_records,
    lowdose_simulation,
    source_geometry,
    sparseview_simulation,
    superres_simulation,
)

__all__ = [
    "NOTHING_TO_WRITE",
    "PHANTOMS",
    "SPLITS",
    "Simulation",
    "Source",
    "ellipses_simulation",
    "fine_shape",
    "lowdose_records",
    "lowdose_simulation",
    "open_source",
    "phantom_to_hu",
    "source_geometry",
    "sparseview_simulation",
    "superres_simulation",
]
