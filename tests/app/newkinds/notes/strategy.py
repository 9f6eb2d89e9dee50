"""What is particular to Notes: the text may not be blank, the author never changes, the word
count is the server's, and without a status subresource the status is written with the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.api.errors import Cause
from handlers.api.strategy import Strategy


def words(obj: Mapping[str, Any]) -> int:
    return int(obj.get("spec", {}).get("words", 0))


class NoteStrategy(Strategy):
    """The Note's rules, as hooks the generic verbs call."""

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        """Everything the creator sends is kept, status included."""

    def prepare_for_update(self, obj: dict[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
        return obj

    def validate(self, obj: Mapping[str, Any]) -> list[Cause]:
        text = obj["spec"]["text"]
        if text.strip():
            return []
        return [
            Cause("spec.text", "FieldValueInvalid", f'Invalid value: "{text}": must not be blank')
        ]

    def validate_update(self, obj: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
        causes = self.validate(obj)
        author = obj["spec"]["author"]
        if author != old["spec"]["author"]:
            causes.append(
                Cause(
                    "spec.author",
                    "FieldValueInvalid",
                    f'Invalid value: "{author}": field is immutable',
                )
            )
        return causes

    def canonicalize(self, obj: dict[str, Any]) -> None:
        obj["spec"]["words"] = len(obj["spec"]["text"].split())
