"""Go's decoding of kube structs: the quick check every write passes and the worded one that
explains a misfit must agree, or a wrong type would slip through unexplained."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.api import gotypes

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["2024-01-02T03:04:05Z", "2024-01-02", "yesterday"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["name", "labels", "uid", "controller", "manager", "time", "fieldsV1", "x", "kind"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
_FIELDS = [(struct, field) for struct, fields in gotypes.STRUCTS.items() for field in fields]


_SAMPLES: list[Any] = [
    None, True, 0, -(2**63), 2**63, 1.5, "", "2024-01-02T03:04:05Z", "2024-01-02", "yesterday",
    [], ["a"], [1], [{}], [{"name": "x", "controller": True}], [{"controller": "yes"}],
    [{"time": "yesterday"}], [{"manager": 1}], {}, {"a": "b"}, {"a": 1}, {"uid": 1},
    {"resourceVersion": "1"},
]  # fmt: skip


@pytest.mark.parametrize("field", _FIELDS, ids="{0[0]}.{0[1]}".format)
def test_the_quick_check_agrees_with_the_worded_one_on_each_type(field: tuple[str, str]) -> None:
    for value in _SAMPLES:
        _agree(field, value)


@settings(max_examples=400, derandomize=True)
@given(st.sampled_from(_FIELDS), _VALUES)
def test_the_quick_check_agrees_with_the_worded_one(field: tuple[str, str], value: Any) -> None:
    _agree(field, value)


def _agree(field: tuple[str, str], value: Any) -> None:
    struct, name = field
    obj = {name: value}
    worded = next(
        (
            p
            for key, v in obj.items()
            if v is not None
            and (p := gotypes._value_problem(gotypes.STRUCTS[struct][key], v, "w", key))
        ),
        None,
    )
    assert gotypes._fits_struct(struct, obj) == (worded is None)
    assert (gotypes.struct_problem(struct, "", obj) is None) == (worded is None)


def test_a_misfit_is_worded_as_go_words_it() -> None:
    problem = gotypes.struct_problem("ObjectMeta", "metadata", {"labels": {"a": 1}})
    assert problem == (
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
        "string"
    )
    nested = {"ownerReferences": [{"name": "x", "controller": "yes"}]}
    assert gotypes.struct_problem("ObjectMeta", "metadata", nested) == (
        "json: cannot unmarshal string into Go struct field "
        "OwnerReference.metadata.ownerReferences.controller of type bool"
    )
