"""The generated configuration reference (docs/hooks/config_reference.py) covers the whole schema."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
import typing
from enum import Enum
from pathlib import Path

import pytest

from nmt.config import schema

HOOK = Path(__file__).resolve().parents[2] / "docs" / "hooks" / "config_reference.py"


@pytest.fixture(scope="module")
def hook():
    spec = importlib.util.spec_from_file_location("config_reference_hook", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def page(hook) -> str:
    return hook.render_reference()


def _leaf_keys(cls: type, prefix: str) -> set[str]:
    keys = set()
    for spec in dataclasses.fields(cls):
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        if dataclasses.is_dataclass(default):
            keys |= _leaf_keys(type(default), f"{prefix}.{spec.name}")
        else:
            keys.add(f"{prefix}.{spec.name}")
    return keys


def _nested(cls: type) -> set[type]:
    found = {cls}
    for spec in dataclasses.fields(cls):
        if spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
            if dataclasses.is_dataclass(default):
                found |= _nested(type(default))
    return found


def test_every_schema_dataclass_is_a_section_nested_in_one_or_a_base_of_one(hook):
    defined = {
        cls
        for _, cls in inspect.getmembers(schema, inspect.isclass)
        if dataclasses.is_dataclass(cls) and cls.__module__ == schema.__name__
    }
    covered = set().union(*(_nested(section.schema) for section in hook.sections()))
    covered |= {base for cls in covered for base in cls.__mro__}  # a base class's fields come with its subclasses
    assert defined - covered == set()


def test_every_schema_field_appears_under_its_full_key(hook, page):
    for section in hook.sections():
        for key in _leaf_keys(section.schema, section.prefix):
            assert f"| `{key}` |" in page, f"{key} ({section.schema.__name__}) missing from the reference"


def test_every_enum_value_of_a_field_is_listed(hook, page):
    for section in hook.sections():
        for cls in _nested(section.schema):
            hints = typing.get_type_hints(cls)
            for hint in hints.values():
                enum = hint if inspect.isclass(hint) and issubclass(hint, Enum) else None
                if enum is None:
                    continue
                for member in enum:
                    assert f"`{member.value}`" in page, f"{enum.__name__}.{member.value} missing"


def test_defaults_are_the_schemas_own(hook):
    rows = {row.key: row for row in hook.rows(schema.TrainingSchema, "training")}
    assert rows["training.nonfinite_patience"].default == str(schema.TrainingSchema.nonfinite_patience)
    assert rows["training.max_cpu_time"].default == "null"
    assert rows["training.max_cpu_time"].type == "str or null"
    model = {row.key: row for row in hook.rows(schema.ModelSchema, "model")}
    assert model["model.cell"].default == "lstm"
    assert "`gru`" in model["model.cell"].choices


def test_every_conf_group_file_is_listed(hook, page):
    groups = hook.conf_groups()
    assert {"data", "model", "experiment", "trainer", "logger"} <= set(groups)
    for group, files in groups.items():
        for path in files:
            assert f"`{group}={path.stem}`" in page
    for root in hook.CONF_DIR.glob("*.yaml"):
        assert f"### `{root.name}`" in page
