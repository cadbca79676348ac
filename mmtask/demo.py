"""`make demo`: synthetic posts -> joint model -> per-head metrics -> SavedModel -> one prediction.

Runs in a few minutes on two CPU cores and prints where everything was written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import tensorflow as tf

from mmtask.data import read_mvsa, write_synthetic_mvsa
from mmtask.export import export_saved_model
from mmtask.spec import ComponentSpec, ModelSpec, RunSpec, TrainingSpec
from mmtask.training import save_run, train


def demo_spec(epochs: int = 8) -> RunSpec:
    """The small model the demo trains: 64 px images, a one-block text transformer."""
    return RunSpec(
        model=ModelSpec(
            image_size=64,
            text_encoder=ComponentSpec(
                "transformer", {"max_tokens": 2000, "sequence_length": 24, "embed_dim": 32}
            ),
            image_encoder=ComponentSpec("small_cnn", {"filters": [16, 32, 64], "output_dim": 64}),
            fusion=ComponentSpec("concat", {"units": [64]}),
        ),
        training=TrainingSpec(epochs=epochs, batch_size=32, learning_rate=3e-3, cache=True),
    )


def run_demo(out: Path, num_posts: int = 400, epochs: int = 8) -> dict[str, Path]:
    """Run the whole demo into `out`; return the paths written."""
    started = time.time()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_dir = write_synthetic_mvsa(out / "synthetic_mvsa", num_posts=num_posts, seed=0)
    train_posts = read_mvsa(data_dir, split="train")
    val_posts = read_mvsa(data_dir, split="val")
    print(train_posts.report.summary())
    print(val_posts.report.summary())

    spec = demo_spec(epochs)
    result = train(spec, train_posts, val_posts, verbose=2)
    print("\nValidation report:")
    print(result.report.table())
    paths = {"data": data_dir, **save_run(result, spec, out / "run", overwrite=True)}
    paths["saved_model"] = export_saved_model(result.model, out / "saved_model", overwrite=True)

    served = tf.saved_model.load(str(paths["saved_model"]))
    post = 0
    image_bytes = Path(val_posts.image_paths[post]).read_bytes()
    outputs = served.serve(
        text=tf.constant([val_posts.texts[post]]), image_bytes=tf.constant([image_bytes])
    )
    print(f"\nOne prediction through the SavedModel, post {val_posts.ids[post]}:")
    print(f"  text: {val_posts.texts[post]!r}")
    for task in result.model.tasks:
        label = outputs[f"{task}_label"].numpy()[0].decode()
        probs = ", ".join(f"{p:.3f}" for p in outputs[f"{task}_probabilities"].numpy()[0])
        truth = val_posts.labels[task][post]
        truth_name = val_posts.label_names[task][truth] if truth >= 0 else "(none)"
        print(f"  {task:<16} predicted {label:<9} true {truth_name:<9} probabilities [{probs}]")

    print(f"\nDone in {time.time() - started:.0f} s. Written:")
    for name, path in paths.items():
        print(f"  {name:<12} {path}")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", help="folder to write into")
    parser.add_argument("--posts", type=int, default=400, help="synthetic posts to generate")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    run_demo(Path(args.out), num_posts=args.posts, epochs=args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
