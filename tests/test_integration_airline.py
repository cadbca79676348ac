"""Real data: the airline recipe, briefly trained on a subset, beats each trivial baseline."""

from pathlib import Path

import pytest

from mmtask.data import read_manifest
from mmtask.spec import RunSpec
from mmtask.training import train

ROOT = Path(__file__).resolve().parents[1]
TWEETS = ROOT.parent / "shared" / "data" / "airline_tweets" / "Tweets.csv"
COLUMNS = ["airline_sentiment", "negativereason", "airline", "airline_sentiment_confidence"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not TWEETS.is_file(), reason=f"airline tweets not found at {TWEETS}"),
]


def test_airline_recipe_beats_the_trivial_baselines_on_held_out_tweets():
    posts = read_manifest(TWEETS, image_column=None, text_column="text", label_columns=COLUMNS)
    assert posts.label_types["airline_sentiment_confidence"] == "regression"
    rest, subset = posts.split(0.3, seed=0)
    train_posts, val_posts = subset.split(0.25, seed=0)
    spec = RunSpec.from_file(ROOT / "configs" / "airline_multitask.yaml")
    spec.training.epochs = 2
    result = train(spec, train_posts, val_posts, verbose=0)
    tasks = result.report.tasks
    for task in ["airline_sentiment", "negativereason", "airline"]:
        assert tasks[task].accuracy > tasks[task].majority_rate + 0.05, task
    confidence = tasks["airline_sentiment_confidence"]
    assert confidence.mae < confidence.baseline_mae
    # The reason is labelled on negative tweets only.
    assert tasks["negativereason"].count < tasks["airline_sentiment"].count
