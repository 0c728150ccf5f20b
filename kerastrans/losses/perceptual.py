"""Perceptual loss: distance between features of a frozen VGG network.

Johnson et al. (2016), "Perceptual losses for real-time style transfer and
super-resolution" (ECCV); used for CT denoising by Yang et al. (2018),
WGAN-VGG. The network is built with ``weights=None`` and its weights are read
from a local file (nothing is downloaded), e.g. the Keras
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` or any file written by
``keras.applications.VGG16(weights=None, include_top=False).save_weights()``.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import ops

from kerastrans.errors import file_error
from kerastrans.precision import precision_scope

__all__ = ["PERCEPTUAL_NETWORKS", "PerceptualLoss"]

#: Feature networks and the layer used by default.
PERCEPTUAL_NETWORKS = {"vgg16": "block3_conv3", "vgg19": "block3_conv4"}

#: ImageNet channel means (BGR, 0-255) that Keras VGG weights expect subtracted.
_VGG_MEAN_BGR = (103.939, 116.779, 123.68)


class PerceptualLoss:
    """Mean squared distance between VGG features of two image batches.

    Images in [-1, 1] are mapped to 0-255 and mean-subtracted as the Keras
    VGG weights expect. Three-channel images are taken as RGB; any other
    channel count is compared channel by channel, each channel replicated to
    three grey channels.

    Deliberately not a Keras layer: models hold it without saving the frozen
    VGG weights into every checkpoint.

    Args:
        weights_path: Local weights file of the network without its top.
        layer: Name of the feature layer (default: see `PERCEPTUAL_NETWORKS`).
        network: ``"vgg16"`` or ``"vgg19"``.
        dtype: Precision of the feature network (`None`: global policy).

    Raises:
        FileNotFoundError: If ``weights_path`` does not exist.
        kerastrans.errors.DataError: If the file does not hold the network's weights.
        ValueError: For an unknown network or layer.
    """

    def __init__(
        self,
        weights_path: str | os.PathLike,
        layer: str | None = None,
        network: str = "vgg16",
        dtype: str | None = None,
    ):
        if network not in PERCEPTUAL_NETWORKS:
            raise ValueError(
                f"network must be one of {tuple(PERCEPTUAL_NETWORKS)}, got {network!r}"
            )
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: perceptual loss weights file not found")
        builder = keras.applications.VGG16 if network == "vgg16" else keras.applications.VGG19
        with precision_scope(dtype):
            full = builder(weights=None, include_top=False, input_shape=(None, None, 3))
        try:
            full.load_weights(os.fspath(path))
        except (ValueError, OSError, KeyError) as error:
            raise file_error(path, f"cannot load {network} weights ({error})") from error
        layer = layer or PERCEPTUAL_NETWORKS[network]
        names = [item.name for item in full.layers]
        if layer not in names:
            raise ValueError(f"layer must be one of the {network} layers {names}, got {layer!r}")
        self.network = keras.Model(full.input, full.get_layer(layer).output, name=network)
        self.network.trainable = False
        self.layer = layer

    def _features(self, images):
        images = ops.cast(images, "float32")
        if images.shape[-1] != 3:
            shape = ops.shape(images)
            images = ops.transpose(images, (0, 3, 1, 2))
            images = ops.reshape(images, (-1, shape[1], shape[2], 1))
            images = ops.repeat(images, 3, axis=-1)
        bgr = (images[..., ::-1] + 1.0) * 127.5 - ops.convert_to_tensor(_VGG_MEAN_BGR)
        return ops.cast(self.network(bgr, training=False), "float32")

    def __call__(self, y_true, y_pred):
        """Return the scalar float32 feature distance between the two batches."""
        return ops.mean(ops.square(self._features(y_pred) - self._features(y_true)))
