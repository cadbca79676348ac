"""Tiny models and batches shared by the model, export and distribution tests."""

import numpy as np

from mmtask.encoders import SmallCNNImageEncoder, TransformerTextEncoder
from mmtask.fusion import ConcatFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.weighting import StaticWeighting

TASKS = {"text_task": "text", "image_task": "image", "post_task": "fused"}
NAMES = ["neg", "neu", "pos"]
WORDS = ["good", "bad", "fine", "sun", "rain", "cat", "dog", "tea"]


def make_model(weights=None, seed=0, image_size=16, dropout=0.1):
    import keras

    keras.utils.set_random_seed(seed)
    text = TransformerTextEncoder(
        max_tokens=32,
        sequence_length=6,
        embed_dim=8,
        intermediate_dim=8,
        vocabulary=WORDS,
        dropout=dropout,
    )
    return MultiTaskModel(
        encoders={
            "text": text,
            "image": SmallCNNImageEncoder(filters=(4, 8), output_dim=8, dropout=dropout),
        },
        fusion=ConcatFusion(units=(8,), dropout=dropout),
        heads={t: ClassificationHead(3, name=t) for t in TASKS},
        task_inputs=TASKS,
        label_names={t: NAMES for t in TASKS},
        weighting=StaticWeighting(list(TASKS), weights),
        image_size=(image_size, image_size),
    )


def make_batch(n=12, seed=0, image_size=16):
    rng = np.random.default_rng(seed)
    texts = np.array([" ".join(rng.choice(WORDS, 4)) for _ in range(n)], dtype=object)
    images = rng.uniform(0, 255, (n, image_size, image_size, 3)).astype("float32")
    labels = {t: rng.integers(0, 3, n).astype("int32") for t in TASKS}
    return {"text": texts, "image": images}, labels


def tiny_efficientnet_backbone():
    """A two-block keras-hub EfficientNet, with BatchNormalization after every convolution.

    `num_features` stays at its default: keras-hub 0.32 leaves it out of the
    backbone's config, so another value would not survive a preset round trip.
    """
    import keras_hub

    return keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0],
        stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3],
        stackwise_num_repeats=[1, 1],
        stackwise_input_filters=[8, 8],
        stackwise_output_filters=[8, 16],
        stackwise_expansion_ratios=[1, 2],
        stackwise_squeeze_and_excite_ratios=[0, 0],
        stackwise_strides=[1, 2],
        stackwise_block_types=["v1", "v1"],
        stackwise_force_input_filters=[0, 0],
        stackwise_nores_option=[False, False],
        dropout=0.0,
        activation="relu6",
    )


def tiny_bert_backbone(vocabulary_size, num_layers=1, max_sequence_length=8, dropout=0.1):
    """A keras-hub BERT 8 wide, with 2 heads per layer."""
    import keras_hub

    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=max_sequence_length,
        dropout=dropout,
    )


def trained_from(encoder, layer_name):
    """Ids of the variables of `layer_name`, of the backbone layers after it, of the projection."""
    layers = encoder.backbone.layers
    start = [layer.name for layer in layers].index(layer_name)
    trained = {id(v) for layer in layers[start:] for v in layer.weights}
    return trained | {id(v) for v in encoder.projection.weights}


def image_only_model(encoder, size):
    """A one-task model reading `encoder` at `size` x `size`: building it builds the encoder."""
    return MultiTaskModel(
        encoders={"image": encoder},
        heads={"post": ClassificationHead(2)},
        task_inputs={"post": "image"},
        label_names={"post": ["no", "yes"]},
        image_size=(size, size),
    )
