"""One place for defaults: the typed settings are held to the JSON schema, and the registries to its enums."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from instruct_ablate import settings, variants
from instruct_ablate.families import PROMPT_FORMATS
from instruct_ablate.models import MODEL_KINDS

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
PROPS = SCHEMA["properties"]


def _fields(cls):
    return {f.name: f.default for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    "cls, schema",
    [
        (settings.TrainingConfig, SCHEMA["$defs"]["training"]),
        (settings.DecodingSettings, PROPS["decoding"]),
        (settings.Checkpointing, PROPS["checkpointing"]),
        (settings.JobResources, SCHEMA["$defs"]["job_resources"]),
    ],
    ids=["training", "decoding", "checkpointing", "resources"],
)
def test_every_setting_is_a_schema_property_with_the_same_default(cls, schema):
    fields = _fields(cls)
    assert set(fields) == set(schema["properties"]), set(fields) ^ set(schema["properties"])
    for name, prop in schema["properties"].items():
        if "default" in prop:
            assert prop["default"] == fields[name], name


def test_resource_kinds_and_enums_come_from_one_place():
    assert set(settings.RESOURCES) == set(PROPS["resources"]["properties"])
    training = SCHEMA["$defs"]["training"]["properties"]
    assert tuple(training["lr_scheduler"]["enum"]) == settings.LR_SCHEDULERS
    assert tuple(training["dtype"]["enum"]) == tuple(d for d in settings.DTYPES if d) + (None,)
    variant = PROPS["variants"]["additionalProperties"]["properties"]
    assert tuple(variant["definition"]["enum"]) == variants.DEFINITION_KINDS
    assert tuple(variant["demonstrations"]["properties"]["kind"]["enum"]) == variants.DEMONSTRATION_KINDS
    assert tuple(variant["demonstrations"]["properties"]["method"]["enum"]) == variants.DELUSIVE_METHODS
    model = PROPS["models"]["additionalProperties"]["properties"]
    assert tuple(model["kind"]["enum"]) == MODEL_KINDS
    assert tuple(model["prompt_format"]["enum"]) == PROMPT_FORMATS


def test_library_and_command_line_defaults_are_the_settings():
    from instruct_ablate.cli import _parser
    from instruct_ablate.predict import generate, predict

    d, t = settings.DecodingSettings(), settings.TrainingConfig()
    sig = inspect.signature(predict).parameters
    assert (sig["max_new_tokens"].default, sig["batch_tokens"].default, sig["handover_every"].default,
            sig["max_source_length"].default, sig["device"].default) == (
        d.max_new_tokens, d.batch_tokens, d.handover_every, t.max_source_length, t.device)
    assert inspect.signature(generate).parameters["batch_tokens"].default == d.batch_tokens
    args = _parser().parse_args(["predict", "--shards", "s", "--checkpoint", "c", "--out", "o"])
    assert (args.max_new_tokens, args.batch_tokens, args.handover_every, args.device) == (
        d.max_new_tokens, d.batch_tokens, d.handover_every, t.device)
    assert "auto" not in SCHEMA["$defs"]["training"]["properties"]["device"]["pattern"]  # a config names its device


def test_unknown_keys_name_their_section():
    for cls, section in ((settings.DecodingSettings, "decoding"), (settings.Checkpointing, "checkpointing"),
                         (settings.TrainingConfig, "training")):
        with pytest.raises(ValueError, match=f"^{section}: unknown keys \\['nope'\\]"):
            cls.from_dict({"nope": 1})
