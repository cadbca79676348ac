"""Cross-modal alignment: text and image projected to one space, trained with InfoNCE.

Posts pair a text with an image; treating the other posts of a batch as
negatives (CLIP's symmetric contrastive loss) teaches both encoders a shared
space, which helps the heads and makes text <-> image retrieval possible.
"""

from __future__ import annotations

import keras
from keras import ops

from mmtask.registry import ALIGNMENTS

MODALITIES = ("image", "text")


@ALIGNMENTS.register("contrastive")
class ContrastiveAlignment(keras.layers.Layer):
    """Projects the text and image vectors to a shared, L2-normalised space.

    In training it adds `weight * InfoNCE` to the model's losses: with
    similarities s_ij = <text_i, image_j> / temperature over the batch, the
    loss is the mean of cross-entropy(s_i., i) and cross-entropy(s_.j, j).
    The loss is also logged as `alignment_loss` (on every backend but JAX,
    whose trainer cannot update a layer's metric).

    Args:
        projection_dim: int. Width of the shared space.
        temperature: float. Softmax temperature of the similarities.
        weight: float. Weight of the alignment loss in the total.

    Example:
    ```python
    model = MultiTaskModel(..., alignment=ContrastiveAlignment(projection_dim=64))
    embeddings = model.predict(x)  # also holds "text_embedding" and "image_embedding"
    ```
    """

    def __init__(
        self,
        projection_dim: int = 64,
        temperature: float = 0.07,
        weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"`temperature` must be > 0. Received: {temperature}")
        if weight < 0:
            raise ValueError(f"`weight` must be >= 0. Received: {weight}")
        self.projection_dim = projection_dim
        self.temperature = temperature
        self.weight = weight
        self.projections = {
            m: keras.layers.Dense(projection_dim, name=f"{m}_projection") for m in MODALITIES
        }
        # Keras' JAX trainer calls layers statelessly and cannot update a metric
        # from inside `call` (keras-team/keras#21639): on JAX `alignment_loss`
        # is not logged.
        self.loss_tracker = (
            None
            if keras.backend.backend() == "jax"
            else keras.metrics.Mean(name="alignment_loss")
        )

    def build(self, input_shape):
        missing = sorted(set(MODALITIES) - set(input_shape))
        if missing:
            raise ValueError(f"Alignment needs both text and image vectors; missing {missing}.")
        for m in MODALITIES:
            self.projections[m].build(input_shape[m])
        self.built = True

    def embed(self, modality_vectors: dict) -> dict:
        """Modality -> L2-normalised projection (B, projection_dim)."""
        return {m: _normalize(self.projections[m](modality_vectors[m])) for m in MODALITIES}

    def contrastive_loss(self, embeddings: dict):
        """The symmetric InfoNCE loss of a batch of paired embeddings."""
        logits = ops.matmul(embeddings["text"], ops.transpose(embeddings["image"]))
        logits = ops.cast(logits, "float32") / self.temperature
        targets = ops.arange(ops.shape(logits)[0])
        text_to_image = keras.losses.sparse_categorical_crossentropy(
            targets, logits, from_logits=True
        )
        image_to_text = keras.losses.sparse_categorical_crossentropy(
            targets, ops.transpose(logits), from_logits=True
        )
        return 0.5 * (ops.mean(text_to_image) + ops.mean(image_to_text))

    def call(self, modality_vectors: dict, training=None):
        embeddings = self.embed(modality_vectors)
        if training:
            loss = self.contrastive_loss(embeddings)
            self.add_loss(self.weight * loss)
            if self.loss_tracker is not None:
                self.loss_tracker.update_state(loss)
        return embeddings

    def compute_output_shape(self, input_shape):
        return {m: (input_shape[m][0], self.projection_dim) for m in MODALITIES}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projection_dim": self.projection_dim,
                "temperature": self.temperature,
                "weight": self.weight,
            }
        )
        return config


def _normalize(x):
    return x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)
