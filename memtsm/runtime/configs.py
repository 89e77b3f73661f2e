"""The one way memtsm builds a typed, frozen config from a plain dict (YAML, JSON, checkpoint).

Every config class's ``from_dict`` is :func:`config_from_dict`: unknown keys and missing
required fields are errors that name the config and list what it knows, lists become tuples
where the field's default is a tuple (YAML and JSON have no tuples), and nested config fields
are built from nested dicts. Values are then validated by the class's own ``__post_init__``.
Standard library only, so any package (the model included) may use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

Config = TypeVar("Config")


def config_from_dict(cls: type[Config], data: Mapping[str, Any], what: str,
                     nested: Mapping[str, type] | None = None) -> Config:
    """Build ``cls`` from ``data``; missing optional fields take their defaults.

    Args:
        cls: a dataclass.
        data: its plain-dict form.
        what: how errors name it (``"train"``, ``"scorer"``, ``"ScorerConfig"``).
        nested: field name -> config class, for fields given as nested dicts.

    Raises:
        ValueError: ``data`` is not a mapping, has unknown keys or lacks a required field, or
            ``cls`` rejects a value.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown {what} option(s): {', '.join(map(str, unknown))} "
                         f"(known: {', '.join(sorted(fields))})")
    missing = [name for name, f in fields.items() if name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"missing {what} field(s): {', '.join(missing)}")
    kwargs = dict(data)
    for name, value in kwargs.items():
        if isinstance(value, list) and isinstance(fields[name].default, tuple):
            kwargs[name] = tuple(value)
        sub = (nested or {}).get(name)
        if sub is not None and isinstance(value, Mapping):
            kwargs[name] = config_from_dict(sub, value, f"{what}.{name}")
    return cls(**kwargs)
