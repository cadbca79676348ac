"""AdamW that decays only weight matrices, as fine-tuning recipes for transformers do.

Decaying biases and normalisation scales pulls them towards 0, which only
hurts: BERT-style recipes exclude them. The rule is by rank, so it holds for
any layer and needs no list of variable names, and it survives saving and
the fine-tuning callback's rebuilding of the optimizer from its config.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="mmtask")
class KernelDecayAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` whose weight decay skips variables of rank < 2.

    Kernels and embedding tables (rank >= 2) decay; biases, LayerNormalization
    and BatchNormalization scales and offsets (rank 1) and scalars do not.
    Names excluded with `exclude_from_weight_decay` are excluded too.
    """

    def _use_weight_decay(self, variable) -> bool:
        if len(variable.shape) < 2:
            return False
        return super()._use_weight_decay(variable)
