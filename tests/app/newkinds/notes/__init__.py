"""Note: a namespaced kind stored here, with rules of its own and no status subresource."""

from handlers.api import columns
from handlers.api.kind import Kind
from tests.app.newkinds.notes.strategy import NoteStrategy, words

KIND = Kind(
    plural="notes",
    singular="note",
    kind="Note",
    namespaced=True,
    description="Note is a short text with its author.",
    spec_schema={
        "type": "object",
        "required": ["text", "author"],
        "properties": {
            "text": {"type": "string"},
            "author": {"type": "string"},
            "words": {"type": "integer"},
        },
    },
    columns=(
        columns.NAME,
        columns.Column("Words", "integer", "Words in the text.", words),
        columns.AGE,
    ),
    categories=(),
    strategies={"": NoteStrategy()},
)
