"""mmtask.train on frozen encoders: run once, cached, and the saved model serves raw posts."""

import numpy as np
import pytest
import tensorflow as tf

import mmtask.transfer.feature_cache as feature_cache
from mmtask.data import make_dataset, read_mvsa
from mmtask.data.synthetic import write_synthetic_mvsa
from mmtask.export import export_saved_model
from mmtask.spec import RunSpec
from mmtask.training import load_model, save_run, train
from mmtask.transfer.feature_cache import FeatureCache
from mmtask.transfer.frozen_encoders import cached_twin

SIZE = 32


def spec(fusion="concat", augment=False, fine_tuning=None, epochs=2):
    return RunSpec.from_dict(
        {
            "model": {
                "image_size": SIZE,
                "text_encoder": {
                    "name": "transformer",
                    "options": {
                        "max_tokens": 300,
                        "sequence_length": 10,
                        "embed_dim": 8,
                        "intermediate_dim": 8,
                        "trainable": False,
                    },
                },
                "image_encoder": {
                    "name": "small_cnn",
                    "options": {"filters": [4, 8], "output_dim": 8, "trainable": False},
                },
                "fusion": {"name": fusion, "options": {}},
            },
            "training": {
                "epochs": epochs,
                "batch_size": 16,
                "augment": augment,
                "fine_tuning": fine_tuning,
            },
        }
    )


def changed_layers(backbone, preset: str) -> set[str]:
    """Names of `backbone`'s layers whose weights differ from those of the preset it came from."""
    import keras_hub

    pretrained = keras_hub.models.Backbone.from_preset(preset)
    return {
        layer.name
        for layer in backbone.layers
        if layer.weights
        and any(
            not np.array_equal(a, b)
            for a, b in zip(
                layer.get_weights(), pretrained.get_layer(layer.name).get_weights(), strict=True
            )
        )
    }


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = write_synthetic_mvsa(tmp_path_factory.mktemp("mvsa"), num_posts=80, image_size=SIZE)
    return read_mvsa(root, split="train", verbose=0), read_mvsa(root, split="val", verbose=0)


@pytest.fixture()
def computed(monkeypatch):
    counts = []
    original = feature_cache.encode_posts

    def counting(posts, encoder, modality, **kwargs):
        counts.append((modality, len(posts)))
        return original(posts, encoder, modality, **kwargs)

    monkeypatch.setattr(feature_cache, "encode_posts", counting)
    return counts


def test_frozen_encoders_run_once_and_a_second_run_reads_the_cache(splits, tmp_path, computed):
    train_posts, val_posts = splits
    first = train(spec(), train_posts, val_posts, verbose=0, cache_dir=tmp_path)
    assert first.cached == {"image": False, "text": False}
    n_train, n_val = len(train_posts), len(val_posts)
    assert sorted(computed) == sorted(
        [("image", n_train), ("image", n_val), ("text", n_train), ("text", n_val)]
    )
    second = train(spec(), train_posts, val_posts, verbose=0, cache_dir=tmp_path)
    assert len(computed) == 4, "the second run computed features again"
    assert second.report.tasks["post_sentiment"].accuracy == pytest.approx(
        first.report.tasks["post_sentiment"].accuracy
    )


def test_sequence_fusion_caches_sequences(splits, tmp_path):
    train_posts, val_posts = splits
    result = train(spec("cross_attention"), train_posts, val_posts, verbose=0, cache_dir=tmp_path)
    # The small CNN's vector is a dense layer over its patches, not their mean:
    # the image encoder cannot be served from cached patches and runs live.
    assert result.cached == {"text": True}


def test_what_trains_or_is_augmented_runs_live(splits, tmp_path, computed):
    train_posts, val_posts = splits
    schedule = {"stages": [{"at": 1, "unfreeze": ["encoders/text"]}]}
    result = train(
        spec(augment=True, fine_tuning=schedule),
        train_posts,
        val_posts,
        verbose=0,
        cache_dir=tmp_path,
    )
    assert result.cached == {} and computed == []


@pytest.mark.parametrize(
    "pattern, cached",
    [("encoders/*", {"image": False, "text": False}), ("encoders/text/*", {"image": False})],
)
def test_a_schedule_naming_layers_inside_a_frozen_encoder_keeps_it_live(
    splits, tmp_path, pattern, cached
):
    # `encoders/*` also names each encoder whole, which its cached stand-in
    # still matches; `encoders/text/*` names only layers the stand-in lacks.
    train_posts, val_posts = splits
    schedule = {"stages": [{"at": 0, "freeze": [pattern]}]}
    result = train(
        spec(fine_tuning=schedule, epochs=1), train_posts, val_posts, verbose=0, cache_dir=tmp_path
    )
    assert result.cached == cached


def test_caching_can_be_switched_off(splits, tmp_path, computed):
    train_posts, val_posts = splits
    run = spec()
    run.training.cache_frozen_encoders = False
    result = train(run, train_posts, val_posts, verbose=0, cache_dir=tmp_path)
    assert result.cached == {} and computed == []
    assert not any(tmp_path.iterdir())


def test_saved_and_exported_model_serves_raw_posts_like_the_cached_path(splits, tmp_path):
    train_posts, val_posts = splits
    result = train(spec(epochs=3), train_posts, val_posts, verbose=0, cache_dir=tmp_path / "c")
    paths = save_run(result, spec(), tmp_path / "run")
    reloaded = load_model(paths["model"])
    assert sorted(reloaded.encoders) == ["image", "text"]
    assert not any(e.reads == "features" for e in reloaded.encoders.values())
    # The cached training path: the twin on the cached features of the same posts.
    cache = FeatureCache(tmp_path / "c", verbose=0)
    posts = val_posts
    for modality in ("image", "text"):
        values = cache.features(
            val_posts, result.model.encoders[modality], modality, image_size=SIZE
        )
        posts = posts.with_features(modality, values)
    twin = cached_twin(result.model, posts.features)
    cached = twin.predict(
        make_dataset(posts, image_size=SIZE, batch_size=16).map(lambda f, y, m: f), verbose=0
    )
    served = tf.saved_model.load(str(export_saved_model(reloaded, tmp_path / "export")))
    outputs = served.serve(
        text=tf.constant(val_posts.texts),
        image_bytes=tf.constant([open(p, "rb").read() for p in val_posts.image_paths]),
    )
    for task in result.model.tasks:
        np.testing.assert_allclose(
            outputs[f"{task}_probabilities"].numpy(), cached[task], atol=1e-4
        )


def test_frozen_encoders_give_in_training_what_their_cache_holds(tmp_path):
    # Dropout in a frozen encoder (a whole frozen layer, or a frozen backbone)
    # would make live training differ from training on cached outputs.
    import keras
    from stand_ins import keras_hub_text_preset

    from mmtask.encoders import KerasHubTextEncoder, SmallCNNImageEncoder

    images = np.random.default_rng(0).uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32")
    cnn = SmallCNNImageEncoder(filters=(4, 8), output_dim=8, dropout=0.5, trainable=False)
    np.testing.assert_allclose(
        cnn(images, training=True)["vector"], cnn(images, training=False)["vector"], atol=1e-6
    )
    keras.utils.set_random_seed(0)
    text = KerasHubTextEncoder(**keras_hub_text_preset(tmp_path / "bert"), output_dim=4)
    texts = tf.constant(["good sun", "bad rain cat"])
    live, cached = text(texts, training=True), text(texts, training=False)
    np.testing.assert_allclose(live["sequence"], cached["sequence"], atol=1e-6)
    # The projection after the frozen backbone trains: the encoder stays trainable.
    assert text.trainable and text.projection.trainable


def test_a_split_without_the_modality_gets_missing_rows(splits, tmp_path):
    import dataclasses

    train_posts, val_posts = splits
    no_images = dataclasses.replace(val_posts, image_paths=[""] * len(val_posts))
    result = train(spec(), train_posts, no_images, verbose=0, cache_dir=tmp_path)
    assert result.cached == {"image": False, "text": False}
    assert result.report.tasks["image_sentiment"].count == len(val_posts)


def test_an_image_backbone_unfrozen_at_the_top_trains_on_its_cached_stem(
    splits, tmp_path, computed
):
    from stand_ins import keras_hub_image_preset

    from mmtask.evaluation import evaluate_model

    train_posts, val_posts = splits
    run = spec(epochs=2)
    run.model.image_encoder.name = "keras_hub"
    preset = keras_hub_image_preset(tmp_path / "effnet")
    run.model.image_encoder.options = {**preset, "output_dim": 8, "native_image_size": SIZE}
    run.training.fine_tuning = {
        "stages": [
            {"at": 0, "freeze": ["encoders/image/backbone"]},
            {"at": 1, "unfreeze": ["encoders/image/backbone"], "top_n": 2},
        ]
    }
    result = train(run, train_posts, val_posts, verbose=0, cache_dir=tmp_path / "c")
    # The last two convolutions train (BatchNormalization stays frozen): the
    # cut is just below the first of them.
    assert result.stems == {"image": "block2a_project"}
    assert result.cached == {"text": False}
    image_runs = sorted(c for c in computed if c[0] == "image")
    assert image_runs == sorted([("image", len(train_posts)), ("image", len(val_posts))])

    # The real model trained through the twin: its top moved, its stem did not.
    backbone = result.model.encoders["image"].backbone
    assert changed_layers(backbone, preset["preset"]) == {"top_conv", "block2a_project"}
    # From raw images it scores what the twin scored from the cached stem.
    live = evaluate_model(result.model, make_dataset(val_posts, model=result.model, batch_size=16))
    for task, figures in result.report.tasks.items():
        assert live.tasks[task].accuracy == pytest.approx(figures.accuracy), task


def test_a_text_backbone_unfrozen_at_the_top_trains_on_its_cached_stem(splits, tmp_path, computed):
    from stand_ins import keras_hub_text_preset

    from mmtask.evaluation import evaluate_model

    train_posts, val_posts = splits
    run = spec(epochs=2)
    run.model.text_encoder.name = "keras_hub"
    preset = keras_hub_text_preset(tmp_path / "bert")
    run.model.text_encoder.options = {**preset, "output_dim": 8}
    run.training.fine_tuning = {
        "stages": [
            {"at": 0, "freeze": ["encoders/text/backbone"]},
            {"at": 1, "unfreeze": ["encoders/text/backbone/transformer_layers/0"]},
        ]
    }
    result = train(run, train_posts, val_posts, verbose=0, cache_dir=tmp_path / "c")
    # The one transformer layer trains: the cut is at the embeddings' output.
    assert result.stems == {"text": "transformer_layer_0"}
    assert result.cached == {"image": False}
    text_runs = sorted(c for c in computed if c[0] == "text")
    assert text_runs == sorted([("text", len(train_posts)), ("text", len(val_posts))])

    # The real model trained through the twin: its top layer moved, its embeddings did not.
    backbone = result.model.encoders["text"].backbone
    assert changed_layers(backbone, preset["preset"]) == {"transformer_layer_0"}
    # From raw texts it scores what the twin scored from the cached stem.
    live = evaluate_model(result.model, make_dataset(val_posts, model=result.model, batch_size=16))
    for task, figures in result.report.tasks.items():
        assert live.tasks[task].accuracy == pytest.approx(figures.accuracy), task
