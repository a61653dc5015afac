"""GET/POST /sites/{site_id}/experiments, GET/PUT/DELETE /sites/{site_id}/experiments/{id},
GET /sites/{site_id}/experiments/{id}/results.

Results are over the experiment's own window (its start to its end, or to now while it runs),
not a dashboard period: reports/experiments.py says what is counted, reports/significance.py
how it is judged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from werkzeug.wrappers import Response

from flask_tracking.api.auth import Call
from flask_tracking.api.errors import ApiError, invalid
from flask_tracking.api.schemas import (
    ArmOut,
    ComparisonOut,
    ExperimentIn,
    ExperimentList,
    ExperimentOut,
    ExperimentResultOut,
    GoalOutcomeOut,
    GoalRef,
    IntervalOut,
    VariantOut,
)
from flask_tracking.api.spec import operation
from flask_tracking.reports import stats
from flask_tracking.reports.experiments import ALPHA, Counted, InvalidExperiment
from flask_tracking.tracking import experiments
from flask_tracking.tracking.models import Experiment, Site
from flask_tracking.users.apikeys import READ, READ_WRITE

if TYPE_CHECKING:  # imported when results are asked for (see reports/experiments.judge)
    from flask_tracking.reports.significance import Interval

TAG = "Experiments"


def experiment_out(row: Experiment) -> ExperimentOut:
    """Return the API's view of an experiment."""
    definition = row.definition
    total = sum(v.weight for v in definition.variants)
    goals = [GoalRef(id=link.goal_id, name=link.goal.name) for link in row.goals]
    return ExperimentOut(
        id=row.id,
        key=row.key,
        name=row.name,
        status=definition.status,  # type: ignore[arg-type]
        variants=[
            VariantOut(name=v.name, weight=v.weight, share=round(100 * v.weight / total, 2))
            for v in definition.variants
        ],
        primary_goal=goals[0],
        secondary_goals=goals[1:],
        start=definition.start,
        end=definition.end,
        created_at=row.created_at,
    )


def _experiment(site: Site, experiment_id: int) -> Experiment:
    row = experiments.experiment_of(site, experiment_id)
    if row is None:
        raise ApiError(404, "not_found", "No such experiment.")
    return row


def _draft(body: ExperimentIn) -> experiments.Draft:
    return experiments.Draft(
        body.key,
        body.name,
        [(v.name, v.weight) for v in body.variants],
        [body.primary_goal, *body.secondary_goals],
        body.start,
        body.end,
        body.status,
    )


@operation(
    "GET",
    "/sites/{site_id}/experiments",
    scope=READ,
    tag=TAG,
    response=ExperimentList,
    summary="List experiments",
)
def list_experiments(call: Call) -> ExperimentList:
    """The site's experiments, in the order they were defined."""
    return ExperimentList(data=[experiment_out(row) for row in call.own_site().experiments])


@operation(
    "POST",
    "/sites/{site_id}/experiments",
    scope=READ_WRITE,
    tag=TAG,
    body=ExperimentIn,
    response=ExperimentOut,
    status=201,
    summary="Add an experiment",
)
def create_experiment(call: Call, body: ExperimentIn) -> ExperimentOut:
    """Add an experiment. Keys are unique per site; goals are the site's."""
    try:
        row = experiments.add_experiment(call.own_site(), _draft(body))
    except InvalidExperiment as error:
        raise invalid({error.field: str(error)}, str(error)) from None
    return experiment_out(row)


@operation(
    "GET",
    "/sites/{site_id}/experiments/{experiment_id}",
    scope=READ,
    tag=TAG,
    response=ExperimentOut,
    summary="An experiment",
)
def get_experiment(call: Call, experiment_id: int) -> ExperimentOut:
    """An experiment's definition."""
    return experiment_out(_experiment(call.own_site(), experiment_id))


@operation(
    "PUT",
    "/sites/{site_id}/experiments/{experiment_id}",
    scope=READ_WRITE,
    tag=TAG,
    body=ExperimentIn,
    response=ExperimentOut,
    summary="Replace an experiment",
)
def replace_experiment(call: Call, experiment_id: int, body: ExperimentIn) -> ExperimentOut:
    """Replace an experiment's definition (its exposures are events: they stay)."""
    row = _experiment(call.own_site(), experiment_id)
    try:
        experiments.update_experiment(row, _draft(body))
    except InvalidExperiment as error:
        raise invalid({error.field: str(error)}, str(error)) from None
    return experiment_out(row)


@operation(
    "DELETE",
    "/sites/{site_id}/experiments/{experiment_id}",
    scope=READ_WRITE,
    tag=TAG,
    status=204,
    summary="Delete an experiment",
)
def delete_experiment(call: Call, experiment_id: int) -> Response:
    """Delete an experiment; its goals and its exposure events stay."""
    experiments.delete_experiment(_experiment(call.own_site(), experiment_id))
    return Response(status=204)


def _interval(found: Interval | None, scale: float) -> IntervalOut | None:
    if found is None:
        return None
    return IntervalOut(low=round(found.low * scale, 4), high=round(found.high * scale, 4))


def _rounded(value: float | None, scale: float = 1.0, digits: int = 4) -> float | None:
    return None if value is None else round(value * scale, digits)


def _p(value: float | None) -> float | None:
    """A p-value to 4 significant digits (a tiny one stays visible: 1.2e-09, not 0.0)."""
    return None if value is None else float(f"{value:.4g}")


@operation(
    "GET",
    "/sites/{site_id}/experiments/{experiment_id}/results",
    scope=READ,
    tag=TAG,
    response=ExperimentResultOut,
    summary="An experiment's results",
)
def experiment_results(call: Call, experiment_id: int) -> ExperimentResultOut:
    """Per goal, every variant's exposed visitors, conversions and rate, and every treatment
    against the control: the difference and relative uplift with their intervals, the
    fixed-sample, Holm-adjusted and always-valid (sequential) p-values, the Bayesian chance
    to beat the control, and the minimum detectable effect; with the sample-ratio check."""
    site = call.own_site()
    row = _experiment(site, experiment_id)
    definition = row.definition
    result = stats.experiment_results(site.id, definition, now=datetime.now(UTC))
    goals = []
    for index, goal in enumerate(definition.goals):
        arms = []
        for variant in definition.variants:
            counted = result.counted.get((variant.name, goal.name), Counted())
            arms.append(
                ArmOut(
                    variant=variant.name,
                    exposed=result.exposed.get(variant.name, 0),
                    converted=counted.converted,
                    rate=round(result.rate(variant.name, goal), 4),
                    conversions=counted.conversions,
                    revenue=round(counted.revenue, 2),
                )
            )
        comparisons = []
        for outcome in result.outcomes:
            if outcome.goal.name != goal.name:
                continue
            c = outcome.comparison
            comparisons.append(
                ComparisonOut(
                    variant=outcome.variant,
                    difference=round(c.difference * 100, 4),
                    difference_interval=_interval(c.difference_interval, 100),
                    uplift=_rounded(c.uplift, 100),
                    uplift_interval=_interval(c.uplift_interval, 100),
                    p_value=_p(c.p_value),
                    adjusted_p_value=_p(outcome.adjusted_p_value),
                    sequential_p_value=_p(c.sequential_p_value),
                    sequential_interval=_interval(c.sequential_interval, 100),
                    chance_to_beat=_rounded(c.chance_to_beat, 100, 2),
                    uplift_credible=_interval(c.uplift_credible, 100),
                    minimum_detectable=_rounded(c.minimum_detectable, 100),
                )
            )
        goals.append(
            GoalOutcomeOut(goal=goal.name, primary=index == 0, arms=arms, comparisons=comparisons)
        )
    return ExperimentResultOut(
        site_id=site.id,
        experiment=experiment_out(row),
        start=result.start,
        end=result.end,
        exposed={v.name: result.exposed.get(v.name, 0) for v in definition.variants},
        mixed=result.mixed,
        sample_ratio_p_value=_p(result.sample_ratio_p),
        sample_ratio_mismatch=result.sample_ratio_mismatch,
        alpha=ALPHA,
        goals=goals,
    )
