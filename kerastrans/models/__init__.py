"""Translation models as `keras.Model` subclasses with their own train and test steps.

- `Pix2Pix`: paired translation (generator + conditional PatchGAN).
- `CycleGAN`: unpaired translation (two generators, two discriminators).
- `Automap`: reconstruction with fully connected domain-transform layers.

Each is compiled with ``compile(g_optimizer=..., d_optimizer=...)``, trained
with ``fit`` on batches of two images, saved as ``.keras`` and rebuilt from
its config alone.
"""

from kerastrans.models._gan import TranslationGAN, apply_gradients
from kerastrans.models.automap import Automap, MemoryEstimate, automap_memory_estimate
from kerastrans.models.cyclegan import CycleGAN
from kerastrans.models.image_pool import ImagePool
from kerastrans.models.pix2pix import Pix2Pix

__all__ = [
    "Automap",
    "CycleGAN",
    "ImagePool",
    "MemoryEstimate",
    "Pix2Pix",
    "TranslationGAN",
    "apply_gradients",
    "automap_memory_estimate",
]
