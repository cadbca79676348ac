"""DWAWeighting: Dynamic Weight Averaging per epoch, its saved state, and selection by name."""

import math

import keras
import numpy as np
import pytest

from mmtask.errors import SpecError
from mmtask.registry import WEIGHTINGS
from mmtask.weighting import DWAWeighting


def dwa_weights(ratios, temperature):
    """lambda_t = K * softmax_t(r_t / T), written out from the paper."""
    exps = [math.exp(r / temperature) for r in ratios]
    return [len(ratios) * e / sum(exps) for e in exps]


def weights_of(weighting):
    return {t: float(w) for t, w in weighting.effective_weights().items()}


def built(tasks, weights=None, **options):
    weighting = DWAWeighting(tasks, weights, **options)
    weighting.build()
    return weighting


def test_weights_are_one_for_the_first_two_epochs():
    weighting = built(["a", "b"], {"a": 3.0})
    assert weights_of(weighting) == {"a": 3.0, "b": 1.0}  # epoch 1
    weighting.on_epoch_end({"a": 2.0, "b": 1.0})
    assert weights_of(weighting) == {"a": 3.0, "b": 1.0}  # epoch 2
    total = weighting({"a": np.float32(0.5), "b": np.float32(2.0)})
    assert float(total) == pytest.approx(3.0 * 0.5 + 2.0)
    weighting.on_epoch_end({"a": 1.0, "b": 0.9})
    assert weights_of(weighting) != {"a": 3.0, "b": 1.0}  # epoch 3


def test_task_whose_loss_falls_slowest_gets_the_largest_weight():
    weighting = built(["a", "b", "c"], {"c": 2.0}, temperature=2.0)
    weighting.on_epoch_end({"a": 2.0, "b": 1.0, "c": 4.0})
    weighting.on_epoch_end({"a": 1.0, "b": 0.9, "c": 2.0})  # ratios 0.5, 0.9, 0.5
    lam = dwa_weights([0.5, 0.9, 0.5], 2.0)
    assert weights_of(weighting) == pytest.approx({"a": lam[0], "b": lam[1], "c": 2.0 * lam[2]})
    assert lam[1] > lam[0] and sum(lam) == pytest.approx(3.0)
    total = weighting({"a": np.float32(0.3), "b": np.float32(0.6), "c": np.float32(1.5)})
    expected = lam[0] * 0.3 + lam[1] * 0.6 + 2.0 * lam[2] * 1.5
    assert float(total) == pytest.approx(expected, rel=1e-6)
    # The next epoch compares with the one before it, not with the first.
    weighting.on_epoch_end({"a": 0.9, "b": 0.45, "c": 1.0})  # ratios 0.9, 0.5, 0.5
    lam = dwa_weights([0.9, 0.5, 0.5], 2.0)
    assert weights_of(weighting) == pytest.approx({"a": lam[0], "b": lam[1], "c": 2.0 * lam[2]})


@pytest.mark.parametrize("temperature", [0.2, 1.0, 5.0])
def test_temperature_sets_how_uneven_the_weights_are(temperature):
    weighting = built(["a", "b"], temperature=temperature)
    weighting.on_epoch_end({"a": 1.0, "b": 1.0})
    weighting.on_epoch_end({"a": 0.6, "b": 0.9})
    lam = dwa_weights([0.6, 0.9], temperature)
    assert weights_of(weighting) == pytest.approx({"a": lam[0], "b": lam[1]})


def test_higher_temperature_gives_more_even_weights():
    spreads = []
    for temperature in (0.1, 2.0, 1000.0):
        weighting = built(["a", "b"], temperature=temperature)
        weighting.on_epoch_end({"a": 1.0, "b": 1.0})
        weighting.on_epoch_end({"a": 0.5, "b": 1.0})
        weights = weights_of(weighting)
        spreads.append(weights["b"] - weights["a"])
    assert spreads[0] > spreads[1] > spreads[2] > 0
    assert spreads[2] < 1e-3


def test_task_missing_from_an_epoch_keeps_its_weight():
    weighting = built(["a", "b", "c"])
    weighting.on_epoch_end({"a": 1.0, "b": 1.0, "c": 1.0})
    weighting.on_epoch_end({"a": 0.5, "b": 0.9, "c": 0.8})
    before = weights_of(weighting)
    # "c" is absent and "b" had no labelled example (mean loss 0).
    weighting.on_epoch_end({"a": 0.45, "b": 0.0})
    assert weights_of(weighting) == pytest.approx(before)
    weighting.on_epoch_end({"a": 0.4, "b": 0.6})  # a: 0.4 / 0.45, b: 0.6 / 0.9
    after = weights_of(weighting)
    assert after["c"] == pytest.approx(before["c"])
    assert sum(after.values()) == pytest.approx(3.0)
    assert after["a"] / after["b"] == pytest.approx(math.exp((0.4 / 0.45 - 0.6 / 0.9) / 2.0))


def test_state_survives_get_and_set_weights():
    original = built(["a", "b"], temperature=1.5)
    original.on_epoch_end({"a": 2.0, "b": 1.0})
    original.on_epoch_end({"a": 1.0, "b": 0.8})
    copy = built(["a", "b"], temperature=1.5)
    copy.set_weights(original.get_weights())
    assert weights_of(copy) == weights_of(original)
    # The loss history came along too: the next update is the same.
    for weighting in (original, copy):
        weighting.on_epoch_end({"a": 0.9, "b": 0.2})
    assert weights_of(copy) == pytest.approx(weights_of(original))
    assert weights_of(copy)["a"] == pytest.approx(dwa_weights([0.9, 0.25], 1.5)[0])


def test_config_round_trip():
    weighting = DWAWeighting(["a", "b"], {"a": 0.5}, temperature=3.0, name="w")
    restored = DWAWeighting.from_config(weighting.get_config())
    assert (restored.tasks, restored.static_weights) == (["a", "b"], {"a": 0.5, "b": 1.0})
    assert (restored.temperature, restored.name) == (3.0, "w")
    assert isinstance(keras.layers.deserialize(keras.layers.serialize(weighting)), DWAWeighting)
    assert DWAWeighting(["a"]).temperature == 2.0


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_bad_temperature_is_an_error(temperature):
    with pytest.raises(ValueError, match="temperature"):
        DWAWeighting(["a"], temperature=temperature)


def test_unknown_task_in_epoch_losses_is_an_error():
    with pytest.raises(ValueError, match="unknown tasks"):
        built(["a"]).on_epoch_end({"b": 1.0})


def test_selectable_by_name_in_the_registry():
    weighting = WEIGHTINGS.build("dwa", tasks=["a", "b"], weights={"b": 2.0}, temperature=4.0)
    assert isinstance(weighting, DWAWeighting)
    assert (weighting.temperature, weighting.static_weights) == (4.0, {"a": 1.0, "b": 2.0})
    with pytest.raises(SpecError, match="temperature"):
        WEIGHTINGS.build("dwa", tasks=["a"], temperature=0.0)


def test_selectable_by_name_in_a_model_spec(build_with_weighting):
    model = build_with_weighting({"name": "dwa", "options": {"temperature": 3.0}})
    assert isinstance(model.weighting, DWAWeighting)
    assert model.weighting.temperature == 3.0
    assert model.weighting.static_weights == {"a": 0.5, "b": 1.0}


def test_fit_logs_new_weights_from_the_third_epoch(make_image_model, color_images, tmp_path):
    x, labels = color_images
    noise = np.random.default_rng(1).integers(0, 4, len(labels))
    weighting = DWAWeighting(["clean", "noisy"], {"clean": 2.0}, temperature=2.0)
    model = make_image_model(weighting)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    y = {"clean": labels, "noisy": noise}
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0).history
    static = {"clean": 2.0, "noisy": 1.0}
    ratios = [history[f"{t}_loss"][1] / history[f"{t}_loss"][0] for t in static]
    lam = dict(zip(static, dwa_weights(ratios, 2.0), strict=True))
    for task, weight in static.items():
        logged = history[f"{task}_loss_weight"]
        assert logged[:2] == pytest.approx([weight, weight])
        assert logged[2] == pytest.approx(weight * lam[task], rel=1e-5)
        assert abs(logged[2] - logged[1]) > 1e-4
    # The state is not trained, and a .keras file keeps it.
    trainable = {id(v) for v in model.trainable_variables}
    assert not any(id(v) in trainable for v in weighting.weights)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.weighting, DWAWeighting)
    assert loaded.weighting.temperature == 2.0
    for restored, saved in zip(
        loaded.weighting.get_weights(), weighting.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(restored, saved)
    assert weights_of(loaded.weighting) == pytest.approx(weights_of(weighting))


def test_backup_and_restore_saves_the_updated_state(make_image_model, color_images, tmp_path):
    x, labels = color_images
    model = make_image_model(DWAWeighting(["clean", "noisy"]))
    model.compile(optimizer="adam")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    y = {"clean": labels, "noisy": labels[::-1]}
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[backup])
    restored = make_image_model(DWAWeighting(["clean", "noisy"]))
    restored.load_weights(tmp_path / "latest.weights.h5")
    assert float(model.weighting.last_losses.numpy()[0]) > 0  # epoch 1 was recorded ...
    for saved, current in zip(
        restored.weighting.get_weights(), model.weighting.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(saved, current)  # ... and is in the backup
