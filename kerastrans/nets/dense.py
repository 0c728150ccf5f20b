"""A dense layer with its own learning rate, by reparameterisation.

Keras optimizers take one learning rate per model. AUTOMAP's domain transform
started at FBP needs a rate about 50 times smaller than the convolutions that
correct it; `ScaledDense` gives it one without a second optimizer.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = ["ScaledDense"]


@keras.saving.register_keras_serializable(package="kerastrans")
class ScaledDense(keras.layers.Layer):
    """A dense layer that learns ``learning_rate_scale`` times as fast as the rest of the model.

    Keras optimizers take one learning rate per model, and Adam moves every
    weight by about that rate per step whatever its gradient's size. A layer
    that needs a smaller rate than its neighbours (AUTOMAP's 90 M-weight domain
    transform started at FBP, beside convolutions that start from scratch)
    gets it by reparameterisation: the layer stores ``kernel / s`` and
    ``bias / s`` and computes ``s * (x @ kernel + bias)``, so a step of size
    ``lr`` on the stored weights is a step of ``s * lr`` on the effective ones.
    The scale multiplies the output (``units`` values) rather than the kernel,
    which costs nothing beside the product.

    Args:
        units: Output size.
        activation: Keras activation name or function (`None`: linear).
        learning_rate_scale: ``s`` > 0, the layer's rate relative to the optimizer's.
        kernel_initializer: Initialiser of the effective kernel (stored divided by ``s``).
    """

    def __init__(
        self,
        units: int,
        activation=None,
        learning_rate_scale: float = 1.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) != units or units < 1:
            raise ValueError(f"units must be an integer >= 1, got {units}")
        if not learning_rate_scale > 0:
            raise ValueError(f"learning_rate_scale must be > 0, got {learning_rate_scale}")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.learning_rate_scale = float(learning_rate_scale)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        shape = (input_shape[-1], self.units)
        effective = self.kernel_initializer(shape, dtype=self.variable_dtype)
        self.kernel = self.add_weight(
            shape=shape,
            initializer=lambda *_, **__: effective / self.learning_rate_scale,
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        outputs = (ops.matmul(inputs, self.kernel) + self.bias) * self.learning_rate_scale
        return self.activation(outputs)

    def effective_weights(self) -> list[np.ndarray]:
        """``[kernel, bias]`` as the layer applies them (the stored ones times the scale)."""
        return [weight.numpy() * self.learning_rate_scale for weight in (self.kernel, self.bias)]

    def set_effective_weights(self, weights) -> None:
        """Set the layer to apply ``[kernel, bias]`` (stored divided by the scale)."""
        self.set_weights([np.asarray(w) / self.learning_rate_scale for w in weights])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            learning_rate_scale=self.learning_rate_scale,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
