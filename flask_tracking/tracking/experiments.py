"""A site's A/B experiments, kept with the rules of reports/experiments.py."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select

from flask_tracking.extensions import db
from flask_tracking.reports.experiments import (
    MAX_EXPERIMENTS,
    Experiment,
    InvalidExperiment,
    make_experiment,
)
from flask_tracking.reports.ranges import as_utc
from flask_tracking.tracking.goals import goal_of
from flask_tracking.tracking.models import Experiment as ExperimentRow
from flask_tracking.tracking.models import ExperimentGoal, Site
from flask_tracking.tracking.sites import site_row


@dataclass(frozen=True, slots=True)
class Draft:
    """An experiment as a form or the API gives it: goal ids, not goals."""

    key: str
    name: str
    variants: list[tuple[str, int]]
    goal_ids: list[int]  # the primary goal first
    start: datetime | None = None
    end: datetime | None = None
    status: str = "draft"


def experiment_of(site: Site, experiment_id: int) -> ExperimentRow | None:
    """Return one of the site's experiments by id (None for another site's or a missing one)."""
    return site_row(ExperimentRow, site, experiment_id)


def _checked(site: Site, draft: Draft, keep: ExperimentRow | None = None) -> Experiment:
    """Check a draft against the rules and the site (its goals, its other experiments' keys)."""
    goals = []
    for goal_id in draft.goal_ids:
        goal = goal_of(site, goal_id)
        if goal is None:
            raise InvalidExperiment(
                f"This site has no goal {goal_id}: an experiment is judged on its goals.", "goals"
            )
        goals.append(goal.definition)
    start = None if draft.start is None else as_utc(draft.start)
    end = None if draft.end is None else as_utc(draft.end)
    checked = make_experiment(
        draft.key, draft.name, draft.variants, goals, start=start, end=end, status=draft.status
    )
    taken = db.session.scalar(
        select(ExperimentRow).where(
            ExperimentRow.site_id == site.id, ExperimentRow.key == checked.key
        )
    )
    if taken is not None and taken is not keep:
        raise InvalidExperiment(
            f"This site already has an experiment with the key {checked.key!r}.", "key"
        )
    return checked


def _store(row: ExperimentRow, checked: Experiment, goal_ids: list[int]) -> None:
    row.key, row.name, row.status = checked.key, checked.name, checked.status
    row.variants = [[v.name, v.weight] for v in checked.variants]
    row.starts_at, row.ends_at = checked.start, checked.end
    row.goals.clear()
    db.session.flush()  # the old positions go before the new ones arrive
    row.goals.extend(
        ExperimentGoal(position=index, goal_id=goal_id) for index, goal_id in enumerate(goal_ids)
    )


def add_experiment(site: Site, draft: Draft) -> ExperimentRow:
    """Add an experiment; raise InvalidExperiment when the draft is not one."""
    count = db.session.scalar(select(func.count()).where(ExperimentRow.site_id == site.id)) or 0
    if count >= MAX_EXPERIMENTS:
        raise InvalidExperiment(
            f"A site has at most {MAX_EXPERIMENTS} experiments; remove one to add another.",
            "experiments",
        )
    checked = _checked(site, draft)
    row = ExperimentRow(site_id=site.id, variants=[])
    db.session.add(row)
    _store(row, checked, draft.goal_ids)
    db.session.commit()
    return row


def update_experiment(row: ExperimentRow, draft: Draft) -> ExperimentRow:
    """Replace an experiment's definition (its exposures are events: they stay)."""
    _store(row, _checked(row.site, draft, keep=row), draft.goal_ids)
    db.session.commit()
    return row


def set_status(row: ExperimentRow, status: str, now: datetime) -> ExperimentRow:
    """Start (from now, unless it has a start), stop (ending now, unless it has an earlier
    end) or return an experiment to draft."""
    draft = Draft(
        row.key,
        row.name,
        [(str(n), int(w)) for n, w in row.variants],
        [link.goal_id for link in row.goals],
        row.starts_at,
        row.ends_at,
        status,
    )
    if status == "running" and draft.start is None:
        draft = replace(draft, start=now)
    if status == "stopped":
        end = draft.end if draft.end is not None and as_utc(draft.end) <= now else now
        draft = replace(draft, start=draft.start or now, end=end)
    return update_experiment(row, draft)


def delete_experiment(row: ExperimentRow) -> None:
    """Remove an experiment (its exposures stay in the events, as custom events)."""
    db.session.delete(row)
    db.session.commit()


def experiments_using(goal_id: int) -> list[str]:
    """Return the names of the experiments judged on a goal."""
    return list(
        db.session.scalars(
            select(ExperimentRow.name)
            .join(ExperimentGoal, ExperimentGoal.experiment_id == ExperimentRow.id)
            .where(ExperimentGoal.goal_id == goal_id)
            .distinct()
            .order_by(ExperimentRow.name)
        )
    )
