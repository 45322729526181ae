"""``mechanism.io.serialize``: plain data of nested frozen dataclasses and back."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import pytest

from mechanism.io.serialize import from_plain, to_plain


class Colour(str, Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Leaf:
    value: float
    note: str = ""


@dataclass(frozen=True)
class Tree:
    kind: str = field(default="tree", init=False)     # a constant stored first
    colour: Colour = Colour.RED
    leaves: tuple[Leaf, ...] = ()
    grid: tuple[tuple[int, ...], ...] = ()
    pair: tuple[float, str] = (0.0, "")
    by_name: dict[str, Leaf] = field(default_factory=dict)
    maybe: Leaf | None = None
    raw: dict = field(default_factory=dict)
    total: float = field(init=False)                  # derived, stored last

    def __post_init__(self):
        object.__setattr__(self, "total", float(sum(leaf.value for leaf in self.leaves)))


TREE = Tree(Colour.BLUE, (Leaf(1.5, "a"), Leaf(2)), ((1, 2), (3, 4)), (0.25, "x"),
            {"k": Leaf(-1.0)}, None, {"any": [1, {"b": None}]})


def test_plain_data_keeps_field_order_and_derived_fields():
    plain = to_plain(TREE)
    assert list(plain) == ["kind", "colour", "leaves", "grid", "pair", "by_name", "maybe", "raw", "total"]
    assert plain["kind"] == "tree" and plain["colour"] == "blue" and plain["total"] == 3.5
    assert plain["grid"] == [[1, 2], [3, 4]] and plain["maybe"] is None


def test_json_round_trip_rebuilds_the_same_object():
    again = from_plain(Tree, json.loads(json.dumps(to_plain(TREE))))
    assert again == TREE and isinstance(again.leaves, tuple) and isinstance(again.grid[0], tuple)
    assert again.colour is Colour.BLUE and again.by_name["k"] == Leaf(-1.0)


def test_derived_fields_are_recomputed_not_read():
    plain = to_plain(TREE)
    plain["total"] = 99.0
    assert from_plain(Tree, plain).total == 3.5


@pytest.mark.parametrize("change, match", [
    (lambda d: d["leaves"][0].pop("value"), r"Tree.leaves\[0\]: missing field 'value'"),
    (lambda d: d.update(extra=1), "unknown field 'extra'"),
    (lambda d: d.update(colour="green"), "'green' is not a Colour"),
    (lambda d: d["leaves"][0].update(value="1.5"), r"Tree.leaves\[0\].value: expected a number"),
    (lambda d: d.update(pair=[1.0]), "expected 2 values"),
    (lambda d: d["grid"][1].__setitem__(0, True), "expected int"),
    (lambda d: d.update(by_name=[]), "expected an object"),
    (lambda d: d["leaves"][0].update(value=float("nan")), "expected a finite number"),
])
def test_data_that_does_not_fit_names_the_field(change, match):
    plain = to_plain(Tree(Colour.RED, (Leaf(1.5),), ((1, 2), (3, 4)), (0.0, ""), {}))
    change(plain)
    with pytest.raises(ValueError, match=match):
        from_plain(Tree, plain)


@pytest.mark.parametrize("value", [np.arange(3), Path("x"), object()])
def test_values_that_are_not_plain_data_are_refused(value):
    with pytest.raises(TypeError, match="cannot store"):
        to_plain(Tree(raw={"bad": value}))


@pytest.mark.parametrize("raw, error, match", [
    ({1.5: 1}, TypeError, "float key 1.5"),
    ({"x": float("inf")}, ValueError, "cannot store inf"),
    ({"x": [float("nan")]}, ValueError, "cannot store nan"),
])
def test_keys_that_json_would_stringify_and_non_finite_numbers_are_refused(raw, error, match):
    with pytest.raises(error, match=match):
        to_plain(Tree(raw=raw))


def test_an_int_in_a_float_field_is_kept_as_written():
    leaf = from_plain(Leaf, {"value": 2})
    assert leaf == Leaf(2.0) and json.dumps(to_plain(leaf)) == '{"value": 2, "note": ""}'


@dataclass(frozen=True)
class Sized:
    size: int | tuple[int, int]
    note: str | None = None


@pytest.mark.parametrize("value", [7, (3, 5)])
def test_a_union_field_takes_the_first_type_its_data_fits(value):
    plain = json.loads(json.dumps(to_plain(Sized(value))))
    assert from_plain(Sized, plain) == Sized(value)


@pytest.mark.parametrize("raw", ["7", [3], [3, 5, 7], [3, "5"], 2.5, True])
def test_data_fitting_no_member_of_a_union_is_refused_by_name(raw):
    with pytest.raises(ValueError, match=r"Sized.size: .* fits none of int \| tuple\[int, int\]"):
        from_plain(Sized, {"size": raw, "note": None})
