"""Filters as written in URLs: operators, lists of values, labels people read."""

from __future__ import annotations

import pytest

from flask_tracking.reports.dimensions import (
    InvalidQuery,
    join_values,
    parse_filter,
    split_values,
)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("FR", ("FR",)),
        ("FR|DE", ("FR", "DE")),
        ("a\\|b|c", ("a|b", "c")),  # an escaped bar is part of the value
        ("a\\\\|b", ("a\\", "b")),  # an escaped backslash, then a separator
        ("C:\\docs", ("C:\\docs",)),  # any other backslash stays
        ("", ("",)),
    ],
)
def test_values_split_on_unescaped_bars_and_join_back(text: str, values: tuple[str, ...]) -> None:
    assert split_values(text) == values
    assert split_values(join_values(values)) == values


def test_labels_read_as_sentences_with_names() -> None:
    assert parse_filter("country:is:FR|DE").label == "Country is France or Germany"
    assert parse_filter("country:is_not:FR|").label == "Country is not France nor Unknown"
    assert parse_filter("page:not_contains:/admin").label == "Page does not contain /admin"
    assert parse_filter("goal:is:A|B").values == ("A|B",)  # a goal's name is not a list


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("page:not_contains:", "needs a value"),
        ("page:contains:/a|", "needs a value"),
        ("page:like:/a", "Unknown filter operator"),
        ("page:is:" + "|".join(["x"] * 51), "at most 50 values"),
    ],
)
def test_filters_it_cannot_mean_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        parse_filter(text)
