"""Loss weights and task gradient diagnostics reach TensorBoard, epoch by epoch."""

import keras
import numpy as np
import tensorflow as tf
from tiny_models import NAMES, TASKS, make_batch, make_model

from mmtask.models import MultiTaskModel
from mmtask.weighting import UncertaintyWeighting
from mmtask.weighting.diagnostics import TaskGradientDiagnostics


def scalars(log_dir) -> dict[str, list[float]]:
    """Tag -> values, in step order, of the scalar summaries under `log_dir`."""
    series: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(tf.io.gfile.glob(f"{log_dir}/events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor))
                series.setdefault(value.tag, []).append((event.step, number))
    return {tag: [v for _, v in sorted(points)] for tag, points in series.items()}


def test_weights_and_gradient_diagnostics_are_written_per_epoch(tmp_path):
    base = make_model(dropout=0.0)
    model = MultiTaskModel(
        encoders=base.encoders,
        heads=base.heads,
        task_inputs=TASKS,
        label_names={t: NAMES for t in TASKS},
        fusion=base.fusion,
        weighting=UncertaintyWeighting(list(TASKS)),
        image_size=base.image_size,
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    x, y = make_batch(24)
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[
            TaskGradientDiagnostics(x, y),
            keras.callbacks.TensorBoard(tmp_path, update_freq="epoch"),
        ],
    ).history
    written = scalars(tmp_path / "train")
    for task in TASKS:
        weights = written[f"epoch_{task}_loss_weight"]
        np.testing.assert_allclose(weights, history[f"{task}_loss_weight"], rtol=1e-5)
        assert len(set(np.round(weights, 6))) > 1, f"{task}'s learned weight never moved"
        np.testing.assert_allclose(
            written[f"epoch_{task}_grad_norm"], history[f"{task}_grad_norm"], rtol=1e-5
        )
    assert "epoch_grad_cosine_image_task_vs_post_task" in written
