"""Text encoder around MPNet (all-mpnet-base-v2) loaded from a Hugging Face-format folder.

The same encoder as the BERT family's (`KerasHubTextEncoder`: tokenizer and
backbone inside the model, mean or first-token pooling), reading the folder
with mmtask's own MPNet, since keras-hub has none.
"""

from __future__ import annotations

import keras

from mmtask.encoders.keras_hub_text import KerasHubTextEncoder
from mmtask.encoders.mpnet import load_mpnet_backbone, load_mpnet_tokenizer
from mmtask.encoders.presets import local_preset
from mmtask.registry import TEXT_ENCODERS


@TEXT_ENCODERS.register("mpnet")
class MPNetTextEncoder(KerasHubTextEncoder):
    """An MPNet backbone with its tokenizer, pooled to a sentence vector.

    Takes the arguments of `KerasHubTextEncoder`; `preset` is a local
    Hugging Face-format MPNet folder (config.json, model.safetensors,
    vocab.txt), e.g. all-mpnet-base-v2 as `make mpnet` installs it:
    "package:all_mpnet_base_v2/all-mpnet-base-v2". Texts are packed as
    `<s> ... </s>`; all-mpnet-base-v2's sentence embedding is the mean
    pooling (the default) of these states, L2-normalised.

    Example:
    ```python
    encoder = MPNetTextEncoder(preset="package:all_mpnet_base_v2/all-mpnet-base-v2")
    vectors = encoder(np.array(["what a day"], object))["vector"]  # (1, 768)
    ```
    """

    @staticmethod
    def load_preset(preset: str) -> tuple[keras.layers.Layer, keras.layers.Layer]:
        folder = local_preset(preset)
        return load_mpnet_tokenizer(folder), load_mpnet_backbone(folder)

    def backbone_inputs(self, token_ids, padding_mask) -> dict:
        return {"token_ids": token_ids, "padding_mask": padding_mask}
