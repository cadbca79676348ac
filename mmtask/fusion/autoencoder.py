"""Autoencoder fusion: a shared bottleneck trained to reconstruct every modality."""

from __future__ import annotations

import keras
from keras import ops

from mmtask.fusion.base import Fusion
from mmtask.registry import FUSIONS


@FUSIONS.register("autoencoder")
class AutoencoderFusion(Fusion):
    """Encodes the modality vectors into a bottleneck that must reconstruct each of them.

    The task heads alone only ask the fused vector to carry what their labels
    need. Reconstruction is an auxiliary task that asks it to keep what every
    modality says, which helps when labels are few or only some tasks read the
    fused vector. The modality vectors (sorted key order) are concatenated and
    encoded by an MLP into the bottleneck, which is the layer's output; one
    decoder per modality reconstructs that modality's vector from it.

    In training calls the layer adds `reconstruction_weight * loss` with
    `add_loss`, where `loss` is the mean squared error of each modality,
    averaged over modalities (so a wide modality does not outweigh a narrow
    one); `MultiTaskModel.compute_loss` adds it to the total. Inference calls
    add no loss, so validation losses are the tasks' only, but they still
    reconstruct: the metric `reconstruction_loss` (unweighted, which a Keras
    model collects from its layers into History) is the training error in
    `reconstruction_loss` and the validation error in `val_reconstruction_loss`
    (on every backend but JAX, whose trainer cannot update a layer's metric).

    With `denoising`, each training example loses, with probability
    `mask_probability`, one of its modalities (chosen uniformly, never more than
    one), zeroed at the encoder input, while every modality is still
    reconstructed: the bottleneck must then infer a missing modality from the
    others, which makes it robust to a modality that says little.

    Args:
        bottleneck_dim: int. Width of the bottleneck, the fused output.
        hidden_units: int. Width of the hidden layer of the encoder and of each decoder.
        reconstruction_weight: float. Factor on the reconstruction loss in the total loss.
        denoising: bool. Whether training calls drop one modality of some examples.
        mask_probability: float. With `denoising`, the probability that an example
            loses one modality.
        dropout: float. Dropout after the encoder's hidden layer.
        seed: int | None. Seed of the modality masking.

    Example:
    ```python
    fusion = AutoencoderFusion(bottleneck_dim=32, denoising=True)
    fused = fusion({"text": text_vectors, "image": image_vectors}, training=True)  # (B, 32)
    fusion.losses  # [reconstruction_weight * reconstruction loss]
    ```
    """

    def __init__(
        self,
        bottleneck_dim: int = 64,
        hidden_units: int = 128,
        reconstruction_weight: float = 1.0,
        denoising: bool = False,
        mask_probability: float = 0.5,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("bottleneck_dim", bottleneck_dim), ("hidden_units", hidden_units)):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value}")
        if reconstruction_weight < 0:
            raise ValueError(
                "`reconstruction_weight` must be >= 0. "
                f"Received: reconstruction_weight={reconstruction_weight}"
            )
        if not 0.0 <= mask_probability <= 1.0:
            raise ValueError(
                "`mask_probability` must be in [0, 1]. "
                f"Received: mask_probability={mask_probability}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.bottleneck_dim = int(bottleneck_dim)
        self.hidden_units = int(hidden_units)
        self.reconstruction_weight = float(reconstruction_weight)
        self.denoising = bool(denoising)
        self.mask_probability = float(mask_probability)
        self.dropout = dropout
        self.seed = seed
        self.encoder_hidden = keras.layers.Dense(
            self.hidden_units, activation="relu", name="encoder_hidden"
        )
        self.encoder_dropout = keras.layers.Dropout(dropout, name="encoder_dropout")
        self.encoder_output = keras.layers.Dense(self.bottleneck_dim, name="bottleneck")
        self.seed_generator = keras.random.SeedGenerator(seed, name="mask_seed_generator")
        # Keras' JAX trainer calls layers statelessly and cannot update a metric
        # from inside `call` (keras-team/keras#21639): on JAX `reconstruction_loss`
        # is not logged.
        self.reconstruction_tracker = (
            None
            if keras.backend.backend() == "jax"
            else keras.metrics.Mean(name="reconstruction_loss")
        )
        # Created in `build`, once the modality names and widths are known.
        self.decoder_hidden: dict[str, keras.layers.Dense] = {}
        self.decoder_output: dict[str, keras.layers.Dense] = {}
        self.modalities: list[str] = []

    def build(self, input_shape):
        self.modalities = sorted(input_shape)
        if self.denoising and len(self.modalities) < 2:
            raise ValueError(
                "A denoising AutoencoderFusion drops one modality of some examples and needs "
                f"at least two. Received modalities: {self.modalities}"
            )
        self.encoder_hidden.build((None, sum(input_shape[m][-1] for m in self.modalities)))
        self.encoder_output.build((None, self.hidden_units))
        self.decoder_hidden = {
            m: keras.layers.Dense(self.hidden_units, activation="relu", name=f"decoder_{m}_hidden")
            for m in self.modalities
        }
        self.decoder_output = {
            m: keras.layers.Dense(input_shape[m][-1], name=f"decoder_{m}_output")
            for m in self.modalities
        }
        for m in self.modalities:
            self.decoder_hidden[m].build((None, self.bottleneck_dim))
            self.decoder_output[m].build((None, self.hidden_units))
        self.built = True

    def encode(self, modality_vectors: dict, training=None):
        """The bottleneck (B, bottleneck_dim) of the given modality vectors, as they are."""
        x = ops.concatenate([modality_vectors[m] for m in self.modalities], axis=-1)
        x = self.encoder_dropout(self.encoder_hidden(x), training=training)
        return self.encoder_output(x)

    def reconstruct(self, bottleneck) -> dict:
        """Modality -> that modality's vector as decoded from `bottleneck`."""
        return {
            m: self.decoder_output[m](self.decoder_hidden[m](bottleneck)) for m in self.modalities
        }

    def drop_modalities(self, modality_vectors: dict) -> dict:
        """The vectors with one modality zeroed in about `mask_probability` of the examples.

        Each call draws new choices from the layer's seed generator; a training
        call with `denoising` encodes exactly what this returns.
        """
        first = modality_vectors[self.modalities[0]]
        batch_shape = ops.shape(first)[:1]
        dropped = ops.less(
            keras.random.uniform(batch_shape, seed=self.seed_generator), self.mask_probability
        )
        # Which modality an example loses, if it loses one: never more than one.
        choice = keras.random.randint(
            batch_shape, 0, len(self.modalities), seed=self.seed_generator
        )
        masked = {}
        for i, m in enumerate(self.modalities):
            vector = modality_vectors[m]
            lose = ops.logical_and(dropped, ops.equal(choice, i))
            keep = ops.cast(ops.logical_not(lose), vector.dtype)
            masked[m] = vector * ops.expand_dims(keep, -1)
        return masked

    def call(self, modality_vectors: dict, training=None):
        inputs = modality_vectors
        if training and self.denoising:
            inputs = self.drop_modalities(modality_vectors)
        bottleneck = self.encode(inputs, training=training)
        reconstructions = self.reconstruct(bottleneck)
        errors = []
        for m in self.modalities:
            # The targets are constants: a gradient through them would let the
            # upstream encoders shrink their vectors towards zero, which makes
            # reconstruction trivial and the loss useless. The encoders still
            # learn from this loss through the encoder input.
            target = ops.stop_gradient(ops.cast(modality_vectors[m], "float32"))
            error = ops.square(ops.cast(reconstructions[m], "float32") - target)
            errors.append(ops.mean(error))
        loss = ops.mean(ops.stack(errors))
        if self.reconstruction_tracker is not None:
            self.reconstruction_tracker.update_state(loss)
        if training:
            self.add_loss(self.reconstruction_weight * loss)
        return bottleneck

    def compute_output_shape(self, input_shape):
        first = input_shape[sorted(input_shape)[0]]
        return (first[0], self.bottleneck_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "bottleneck_dim": self.bottleneck_dim,
                "hidden_units": self.hidden_units,
                "reconstruction_weight": self.reconstruction_weight,
                "denoising": self.denoising,
                "mask_probability": self.mask_probability,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config
