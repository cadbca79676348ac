"""Several trained models, or several views of each image, answering as one model.

Seed ensembles and test-time augmentation both average predictions, so one
class does both: every member sees every image view, and each task's output
is the mean over all of them. Heads output probabilities (or values, for
regression), so the mean is the ensemble's own probability. The ensemble
saves, evaluates, predicts and exports like the `MultiTaskModel`s it holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from mmtask.models.image_views import IMAGE_VIEWS
from mmtask.models.multitask import MultiTaskModel


@keras.saving.register_keras_serializable(package="mmtask")
class MultiTaskEnsemble(keras.Model):
    """The mean prediction of `members` over `image_views` of each image.

    Members must agree on what they predict and read: the same tasks, label
    names and types, modalities and image size, and encoders of the same
    classes (so a serving process needs the same imports for all of them).
    They are typically the runs of one recipe with different seeds.

    Args:
        members: sequence of MultiTaskModel. The models averaged.
        image_views: sequence of str. Names in `mmtask.models.IMAGE_VIEWS`
            ("original", "flip", "crop", "flip_crop"); each member predicts
            on each view of the image. `("original",)` is no test-time
            augmentation.

    Example:
    ```python
    ensemble = MultiTaskEnsemble([run_0.model, run_1.model, run_2.model])
    tta = MultiTaskEnsemble([model], image_views=["original", "flip"])
    ```
    """

    def __init__(
        self,
        members: Sequence[MultiTaskModel],
        image_views: Sequence[str] = ("original",),
        name: str = "multi_task_ensemble",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        members = list(members)
        image_views = list(image_views)
        _check_members(members)
        unknown = [v for v in image_views if v not in IMAGE_VIEWS]
        if unknown or not image_views or len(set(image_views)) != len(image_views):
            raise ValueError(
                f"`image_views` must be distinct names among {sorted(IMAGE_VIEWS)}. "
                f"Received: image_views={image_views}"
            )
        if image_views != ["original"] and "image" not in members[0].modalities:
            raise ValueError(
                f"Image views need an image input; the members read {members[0].modalities}."
            )
        self.members = members
        self.image_views = image_views
        self.trainable = False
        self.built = True  # from its members, which are built when constructed

    @property
    def first(self) -> MultiTaskModel:
        return self.members[0]

    @property
    def tasks(self) -> list[str]:
        return self.first.tasks

    @property
    def label_names(self) -> dict[str, list[str]]:
        return self.first.label_names

    @property
    def label_types(self) -> dict[str, str]:
        return self.first.label_types

    @property
    def modalities(self) -> list[str]:
        return self.first.modalities

    @property
    def image_size(self) -> tuple[int, int]:
        return self.first.image_size

    @property
    def heads(self) -> dict:
        """The first member's heads, which decode, score and export the mean outputs."""
        return self.first.heads

    @property
    def encoders(self) -> dict:
        """The first member's encoders (all members' are of the same classes)."""
        return self.first.encoders

    def call(self, inputs, training=False):
        totals = {task: None for task in self.tasks}
        for view in self.image_views:
            viewed = dict(inputs)
            if "image" in viewed and view != "original":
                viewed["image"] = IMAGE_VIEWS[view](viewed["image"])
            for member in self.members:
                outputs = member(viewed, training=False)
                for task in self.tasks:
                    value = ops.cast(outputs[task], "float32")
                    totals[task] = value if totals[task] is None else totals[task] + value
        count = float(len(self.members) * len(self.image_views))
        return {task: total / count for task, total in totals.items()}

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
            "image_views": list(self.image_views),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["members"] = [keras.saving.deserialize_keras_object(m) for m in config["members"]]
        return cls(**config)


def _check_members(members: list) -> None:
    if not members:
        raise ValueError("An ensemble needs at least one member. Received: members=[]")
    not_models = [type(m).__name__ for m in members if not isinstance(m, MultiTaskModel)]
    if not_models:
        raise ValueError(f"Members must be MultiTaskModels. Received: {not_models}")
    first = members[0]

    def signature(model):
        return {
            "tasks": model.tasks,
            "label_names": model.label_names,
            "label_types": model.label_types,
            "modalities": model.modalities,
            "image_size": tuple(model.image_size),
            "encoder classes": {m: type(e).__name__ for m, e in model.encoders.items()},
        }

    expected = signature(first)
    for index, member in enumerate(members[1:], start=1):
        found = signature(member)
        for key, value in expected.items():
            if found[key] != value:
                raise ValueError(
                    f"Ensemble members must agree on {key}: member 0 has {value}, "
                    f"member {index} has {found[key]}."
                )
