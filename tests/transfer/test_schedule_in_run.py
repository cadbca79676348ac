"""A fine-tuning schedule given in a run spec reaches `fit` through `mmtask.train`."""

from mmtask.data import read_mvsa, write_synthetic_mvsa
from mmtask.demo import demo_spec
from mmtask.optimizers import KernelDecayAdamW, WarmupDecay
from mmtask.spec import OptimizerSpec, RunSpec
from mmtask.training import train


def test_schedule_from_a_spec_file_changes_what_trains(tmp_path):
    root = write_synthetic_mvsa(tmp_path / "data", num_posts=60, seed=4)
    spec = demo_spec(epochs=3)
    spec.training.fine_tuning = {
        "unit": "epoch",
        "stages": [
            {"at": 0, "freeze": ["encoders/*"]},
            {"at": 2, "unfreeze": ["encoders/text/*"], "lr_multiplier": 0.1},
        ],
    }
    spec.training.optimizer = OptimizerSpec(name="adamw", warmup_epochs=1, decay="cosine")
    path = tmp_path / "run.json"
    spec.save(path)
    loaded = RunSpec.from_file(path)
    assert loaded.training.fine_tuning == spec.training.fine_tuning
    result = train(loaded, read_mvsa(root, split="train"), verbose=0)
    counts = result.history["trainable_params"]
    text_encoder = result.model.encoders["text"]
    assert counts[0] == counts[1] < counts[2]
    assert counts[2] - counts[1] == text_encoder.count_params()
    # The spec's optimizer ran inside the schedule's wrapper, sized to the run.
    inner = result.model.optimizer.inner_optimizer
    assert type(inner) is KernelDecayAdamW
    steps_per_epoch = -(-60 // spec.training.batch_size)
    schedule = inner._learning_rate
    assert isinstance(schedule, WarmupDecay)
    assert (schedule.total_steps, schedule.warmup_steps) == (3 * steps_per_epoch, steps_per_epoch)
