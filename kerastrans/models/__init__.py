"""Translation models as `keras.Model` subclasses with their own train and test steps.

- `Pix2Pix`: paired translation (generator + conditional PatchGAN).
- `CycleGAN`: unpaired translation (two generators, two discriminators).
- `Automap`: reconstruction with fully connected domain-transform layers.
- `LearnedPrimalDual`, `LearnedGradientDescent`, `FBPUNetModel`: reconstruction
  with the ray transform inside the network (``reconstruction``).

Each is compiled with ``compile(g_optimizer=..., d_optimizer=...)``, trained
with ``fit`` on batches of two images, saved as ``.keras`` and rebuilt from
its config alone.
"""

from kerastrans.models._gan import TranslationGAN, apply_gradients
from kerastrans.models.automap import Automap, MemoryEstimate, automap_memory_estimate
from kerastrans.models.cyclegan import CycleGAN
from kerastrans.models.image_pool import ImagePool
from kerastrans.models.pix2pix import Pix2Pix
from kerastrans.models.reconstruction import (
    FBPUNetModel,
    LearnedGradientDescent,
    LearnedPrimalDual,
)

__all__ = [
    "Automap",
    "CycleGAN",
    "FBPUNetModel",
    "ImagePool",
    "LearnedGradientDescent",
    "LearnedPrimalDual",
    "MemoryEstimate",
    "Pix2Pix",
    "TranslationGAN",
    "apply_gradients",
    "automap_memory_estimate",
]
