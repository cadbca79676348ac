"""FineTuneSchedule and Stage: validation, plain-data round trip, stages in force."""

import json

import pytest

from mmtask.transfer import FineTuneSchedule, Stage

SPEC = {
    "unit": "epoch",
    "batchnorm": "frozen",
    "stages": [
        {"at": 4, "unfreeze": ["*"]},
        {"at": 0, "freeze": ["encoders/*"]},
        {"at": 2, "unfreeze": "encoders/image/backbone", "top_n": 3, "lr_multiplier": 0.1},
        {"at": 2, "unfreeze": ["encoders/text"], "lr_multiplier": 0.01},
    ],
}


def test_from_dict_sorts_by_start_keeping_the_given_order_at_equal_starts():
    schedule = FineTuneSchedule.from_dict(SPEC)
    assert [s.at for s in schedule.stages] == [0, 2, 2, 4]
    assert schedule.stages[1].unfreeze == ("encoders/image/backbone",)
    assert schedule.stages[1].top_n == 3 and schedule.stages[1].lr_multiplier == 0.1
    assert schedule.stages[2].unfreeze == ("encoders/text",)
    assert schedule.stages[0] == Stage(at=0, freeze=["encoders/*"])


def test_round_trips_through_plain_data():
    schedule = FineTuneSchedule.from_dict(SPEC)
    data = json.loads(json.dumps(schedule.to_dict()))
    assert FineTuneSchedule.from_dict(data) == schedule


def test_stages_in_force():
    schedule = FineTuneSchedule.from_dict(SPEC)
    counts = [schedule.stages_in_force(epoch) for epoch in range(6)]
    assert counts == [1, 1, 3, 3, 4, 4]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"stages": [{"at": 0, "freeze": "*"}], "unit": "batch"}, "Invalid value for `unit`"),
        ({"stages": [{"at": 0, "freeze": "*"}], "batchnorm": "x"}, "`batchnorm`"),
        ({"stages": []}, "at least one stage"),
        ({"stages": [{"at": 0, "freeze": "*"}], "epochs": 3}, "Unknown keys"),
        ({"stages": [{"at": 0, "freeze": "*", "lr": 0.1}]}, "Unknown keys"),
        ({"stages": [{"at": -1, "freeze": "*"}]}, "`at` must be"),
        ({"stages": [{"at": 1.5, "freeze": "*"}]}, "`at` must be"),
        ({"stages": [{"at": 0}]}, "must freeze or unfreeze"),
        ({"stages": [{"at": 0, "freeze": "*", "top_n": 2}]}, "give `unfreeze`"),
        ({"stages": [{"at": 0, "unfreeze": "*", "top_n": 0}]}, "`top_n` must be"),
        ({"stages": [{"at": 0, "unfreeze": "*", "lr_multiplier": 0}]}, "`lr_multiplier`"),
        ({"stages": [{"at": 0, "unfreeze": [""]}]}, "non-empty patterns"),
        ({"stages": {"at": 0, "freeze": "*"}}, "sequence of stages"),
    ],
)
def test_rejects_invalid_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        FineTuneSchedule.from_dict(spec)
