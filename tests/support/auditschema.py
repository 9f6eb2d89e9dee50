"""The ``audit.k8s.io/v1`` Event's JSON Schema (``tests/schemas/audit-event-v1.json``, written
from kube's types): any test that reads the audit log checks its events against it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no py.typed, no stubs

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "audit-event-v1.json"


@functools.cache
def _validator() -> Any:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_event(event: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``event`` is an Event kube could write."""
    _validator().validate(event)
