"""The recipes in configs/: each loads, names registered parts, and documents its command."""

import re
import shlex
from pathlib import Path

import pytest

from mmtask.builder import build_model  # noqa: F401  (registers every part)
from mmtask.cli import build_parser
from mmtask.registry import FUSIONS, IMAGE_ENCODERS, TEXT_ENCODERS, WEIGHTINGS
from mmtask.spec import RunSpec
from mmtask.transfer import FineTuneSchedule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))


def test_there_are_recipes():
    assert len(RECIPES) >= 8


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_with_registered_parts(recipe):
    spec = RunSpec.from_file(recipe)
    model = spec.model
    for component, registry in (
        (model.text_encoder, TEXT_ENCODERS),
        (model.image_encoder, IMAGE_ENCODERS),
        (model.fusion, FUSIONS),
        (model.weighting, WEIGHTINGS),
    ):
        if component is not None:
            registry.get(component.name)
    if spec.training.fine_tuning is not None:
        FineTuneSchedule.from_dict(spec.training.fine_tuning)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_documents_a_command_that_parses(recipe):
    lines = recipe.read_text().splitlines()
    comments = [line[1:].strip() for line in lines if line.startswith("#")]
    text = " ".join(comments).replace("\\ ", " ")
    commands = re.findall(r"mmtask ((?:train|pretrain) .*?)(?=$| mmtask |\. |\))", text)
    assert commands, f"{recipe.name} documents no mmtask command"
    for command in commands:
        args = build_parser().parse_args(shlex.split(command))
        if args.command == "train":
            assert Path(args.spec) == Path("configs") / recipe.name
