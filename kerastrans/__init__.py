"""kerastrans: medical image-to-image translation with TensorFlow/Keras.

One framework for denoising, super-resolution, modality conversion and
reconstruction: DICOM/PNG/NPY I/O in physical units, TFDS-format datasets
streamed by tf.data, ODL/ASTRA tomography, and pix2pix / CycleGAN / AUTOMAP
models as `keras.Model` subclasses.

Importing the package does no work: TensorFlow, ODL and pydicom are imported
by the submodules that need them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kerastrans")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
