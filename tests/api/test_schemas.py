"""The API's enumerations are the reporting layer's allow-lists, written as types for the
document: a dimension, metric, period or sort added to reports/ must be added here too."""

from __future__ import annotations

from typing import get_args

from flask_tracking.api import schemas
from flask_tracking.reports.dimensions import CHART_METRICS, DIMENSIONS, METRICS
from flask_tracking.reports.ranges import PRESETS
from flask_tracking.reports.stats import SORTS


def test_enumerations_match_the_reporting_layer() -> None:
    assert get_args(schemas.Period) == PRESETS
    assert get_args(schemas.Metric) == METRICS
    assert get_args(schemas.ChartMetric) == CHART_METRICS
    assert get_args(schemas.DimensionName) == tuple(DIMENSIONS)
    assert get_args(schemas.Sort) == SORTS
