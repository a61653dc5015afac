"""A site's goals: added, changed and removed with the rules of reports/goals.py."""

from __future__ import annotations

from sqlalchemy import func, select

from flask_tracking.extensions import db
from flask_tracking.reports.goals import MAX_GOALS, Goal, InvalidGoal
from flask_tracking.tracking.models import Goal as GoalRow
from flask_tracking.tracking.models import Site
from flask_tracking.tracking.sites import site_row


def site_goals() -> dict[int, tuple[Goal, ...]]:
    """Return every site's goals, by site id (for the writer's goal rollups)."""
    found: dict[int, list[Goal]] = {}
    for row in db.session.scalars(select(GoalRow).order_by(GoalRow.site_id, GoalRow.id)):
        found.setdefault(row.site_id, []).append(row.definition)
    return {site_id: tuple(goals) for site_id, goals in found.items()}


def goal_of(site: Site, goal_id: int) -> GoalRow | None:
    """Return one of the site's goals by id (None for another site's, like a missing one)."""
    return site_row(GoalRow, site, goal_id)


def _check_name(site: Site, name: str, keep: GoalRow | None = None) -> None:
    taken = db.session.scalar(
        select(func.count()).where(
            GoalRow.site_id == site.id,
            GoalRow.name == name,
            GoalRow.id != (keep.id if keep is not None else -1),
        )
    )
    if taken:
        raise InvalidGoal(f"This site already has a goal named {name!r}; choose another name.")


def add_goal(site: Site, definition: Goal) -> GoalRow:
    """Add a goal to a site; raise InvalidGoal when the name is taken or the site has
    MAX_GOALS already."""
    count = db.session.scalar(select(func.count()).where(GoalRow.site_id == site.id)) or 0
    if count >= MAX_GOALS:
        raise InvalidGoal(
            f"A site has at most {MAX_GOALS} goals; remove one to add another.", "goals"
        )
    _check_name(site, definition.name)
    row = GoalRow(site_id=site.id)
    row.set(definition)
    db.session.add(row)
    db.session.commit()
    return row


def update_goal(row: GoalRow, definition: Goal) -> GoalRow:
    """Replace a goal's definition (its conversions are recomputed from the events)."""
    _check_name(row.site, definition.name, keep=row)
    row.set(definition)
    db.session.commit()
    return row


def delete_goal(row: GoalRow) -> None:
    """Remove a goal (the events it counted stay); a goal a funnel or an experiment uses
    is refused."""
    from flask_tracking.tracking.experiments import experiments_using
    from flask_tracking.tracking.funnels import funnels_using

    users = (
        (funnels_using, "a step of the funnel(s)"),
        (experiments_using, "a goal of the experiment(s)"),
    )
    for using, what in users:
        names = ", ".join(repr(name) for name in using(row.id))
        if names:
            message = f"The goal {row.name!r} is {what} {names}: remove it there first."
            raise InvalidGoal(message, "goal")
    db.session.delete(row)
    db.session.commit()
