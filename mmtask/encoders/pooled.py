"""`PooledEncoder`: the part every encoder shares, an optional projection of its pooled vector.

An encoder pools its backbone's output to one vector of width `feature_dim`;
with `output_dim` set, a ReLU dense layer projects that vector to
`output_dim`. Subclasses give `feature_dim`, call `project(pooled)` and call
`super().build(input_shape)` from their own `build`.

The projection is created in `build`, after the subclass's own sublayers, so
it comes last in the layer's attribute order, as it does in data flow (that
order is what a fine-tuning schedule's `top_n` counts by).
"""

from __future__ import annotations

import keras


class PooledEncoder(keras.layers.Layer):
    """Base of the encoders: an optional dense projection after pooling.

    Args:
        output_dim: int | None. If set, a dense projection of the pooled
            vector to this width.
    """

    projection: keras.layers.Layer | None = None

    def __init__(self, output_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if output_dim is not None and (isinstance(output_dim, bool) or int(output_dim) < 0):
            raise ValueError(
                "Invalid value for `output_dim`: expected None (or 0) for no projection, "
                f"or >= 1. Received: {output_dim!r}"
            )
        self.output_dim = int(output_dim) if output_dim else None

    @property
    def feature_dim(self) -> int:
        """Width of the pooled vector, before the projection."""
        raise NotImplementedError(f"{type(self).__name__} must define `feature_dim`.")

    @property
    def output_width(self) -> int:
        """Width of the vector the encoder returns."""
        return self.output_dim or self.feature_dim

    def build(self, input_shape):
        if self.output_dim and self.projection is None:
            # Frozen with its encoder if the encoder was frozen before being built.
            self.projection = keras.layers.Dense(
                self.output_dim, activation="relu", trainable=self.trainable, name="projection"
            )
            self.projection.build((None, self.feature_dim))
        self.built = True

    def project(self, pooled):
        """The pooled vector, projected when `output_dim` is set."""
        return self.projection(pooled) if self.projection is not None else pooled

    def get_config(self):
        config = super().get_config()
        config["output_dim"] = self.output_dim
        return config
