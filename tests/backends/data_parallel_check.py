"""Fits the tiny backend-check model on JAX with keras.distribution.DataParallel; one JSON line.

Run with `XLA_FLAGS=--xla_force_host_platform_device_count=2` and
`KERAS_BACKEND=jax`: the CPU then shows two devices. With argument
`parallel` the batch is split across both by `DataParallel`; with `single`
one device trains on the same batches. Prints the devices used, the loss
history and the final weights.
"""

from __future__ import annotations

import json
import sys

import jax
import keras
import numpy as np
from backend_checks import IMAGE_SIZE, NAMES, TASKS, TEXT_DIM, TEXT_LENGTH, make_data

from mmtask.encoders import PrecomputedEncoder, SmallCNNImageEncoder
from mmtask.fusion import ConcatFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel

mode = sys.argv[1]
if mode == "parallel":
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
x, y = make_data(seed=3)
keras.utils.set_random_seed(0)
# No dropout, so both runs compute exactly the same function.
model = MultiTaskModel(
    encoders={
        "text": PrecomputedEncoder(TEXT_DIM, sequence_length=TEXT_LENGTH, modality="text"),
        "image": SmallCNNImageEncoder(filters=(4, 8), output_dim=8, dropout=0.0),
    },
    fusion=ConcatFusion(units=(8,), dropout=0.0),
    heads={t: ClassificationHead(len(NAMES), name=t) for t in TASKS},
    task_inputs=TASKS,
    label_names={t: NAMES for t in TASKS},
    image_size=(IMAGE_SIZE, IMAGE_SIZE),
)
model.compile(optimizer=keras.optimizers.SGD(0.05))
history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history
print(
    json.dumps(
        {
            "distribution": type(keras.distribution.distribution()).__name__,
            "devices": int(np.size(keras.distribution.distribution().device_mesh.devices))
            if mode == "parallel"
            else 1,
            "loss": history["loss"],
            "weights": [np.asarray(w).ravel()[:16].tolist() for w in model.get_weights()],
        }
    )
)
