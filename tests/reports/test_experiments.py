"""The rules of an experiment (reports/experiments.py): definitions, and the assignment the
tracker and servers share."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from flask_tracking.reports.experiments import (
    InvalidExperiment,
    Variant,
    assign,
    bucket,
    fnv1a,
    make_experiment,
    make_variants,
)
from flask_tracking.reports.goals import make_goal

SIGNUP = make_goal("Signup", "event", event="Signup")


def test_fnv1a_matches_the_published_test_vectors() -> None:
    # From the FNV reference (Fowler, Noll, Vo: draft-eastlake-fnv, test vectors).
    assert fnv1a(b"") == 0x811C9DC5
    assert fnv1a(b"a") == 0xE40C292C
    assert fnv1a(b"foobar") == 0xBF9CF968


def test_assignment_is_deterministic_and_follows_the_weights() -> None:
    variants = make_variants([("control", 1), ("new", 3)])
    assert assign("exp", "user-1", variants) == assign("exp", "user-1", variants)
    shares = Counter(assign("exp", f"user-{n}", variants) for n in range(40_000))
    assert shares["new"] / 40_000 == pytest.approx(0.75, abs=0.01)
    # Another experiment splits the same users independently of this one.
    other = Counter(
        (assign("exp", f"user-{n}", variants), assign("exp-2", f"user-{n}", variants))
        for n in range(40_000)
    )
    assert other[("new", "new")] / 40_000 == pytest.approx(0.75 * 0.75, abs=0.01)
    assert 0 <= bucket("exp", "ü-unicode") < 1


def test_the_last_variant_takes_what_rounding_leaves() -> None:
    assert assign("k", "u", [Variant("only", 1)]) == "only"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"variants": [("A", 1)]}, "variants", "2 to 5 variants"),
        ({"variants": [("A", 1), ("B", 0)]}, "variants", "zero or negative"),
        ({"variants": [("A", 1), ("B", -1)]}, "variants", "zero or negative"),
        ({"variants": [("A", 1), ("B", 10_001)]}, "variants", "from 1 to 10000"),
        ({"variants": [("A", 1), ("B", True)]}, "variants", "whole number"),
        ({"variants": [("A", 1), (" ", 1)]}, "variants", "name is required"),
        ({"key": "-starts-with-a-dash"}, "key", "starting with a letter or digit"),
        ({"key": "x" * 65}, "key", "1 to 64 characters"),
        ({"name": "tab\there"}, "name", "control characters"),
        ({"goals": []}, "goals", "needs a primary goal"),
        ({"goals": [SIGNUP] * 2}, "goals", "listed twice"),
        ({"status": "paused"}, "status", "one of draft, running, stopped"),
        ({"status": "running", "start": None}, "start", "has a start"),
    ],
)
def test_bad_definitions_say_what_is_wrong(
    changes: dict[str, object], field: str, message: str
) -> None:
    fields: dict[str, object] = {
        "key": "exp",
        "name": "Experiment",
        "variants": [("A", 1), ("B", 1)],
        "goals": [SIGNUP],
        "start": datetime(2026, 3, 1, tzinfo=UTC),
        "status": "running",
        **changes,
    }
    with pytest.raises(InvalidExperiment, match=message) as raised:
        make_experiment(
            str(fields["key"]),
            str(fields["name"]),
            fields["variants"],  # type: ignore[arg-type]
            fields["goals"],  # type: ignore[arg-type]
            start=fields["start"],  # type: ignore[arg-type]
            status=str(fields["status"]),
        )
    assert raised.value.field == field
