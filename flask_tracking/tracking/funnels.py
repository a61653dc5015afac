"""A site's funnels: ordered lists of its goals, kept with the rules of reports/funnels.py."""

from __future__ import annotations

from sqlalchemy import func, select

from flask_tracking.extensions import db
from flask_tracking.reports.funnels import MAX_FUNNELS, InvalidFunnel, make_funnel
from flask_tracking.tracking.goals import goal_of
from flask_tracking.tracking.models import Funnel, FunnelStep, Site
from flask_tracking.tracking.sites import site_row


def funnel_of(site: Site, funnel_id: int) -> Funnel | None:
    """Return one of the site's funnels by id (None for another site's, like a missing one)."""
    return site_row(Funnel, site, funnel_id)


def named(site: Site, name: str) -> Funnel | None:
    """Return the site's funnel of this name, if any."""
    return db.session.scalar(select(Funnel).where(Funnel.site_id == site.id, Funnel.name == name))


def _checked(site: Site, name: str, goal_ids: list[int], keep: Funnel | None = None) -> str:
    """Check the definition (steps are goals of this site); return the clean name."""
    goals = []
    for goal_id in goal_ids:
        goal = goal_of(site, goal_id)
        if goal is None:
            raise InvalidFunnel(f"This site has no goal {goal_id}: steps are its goals.", "steps")
        goals.append(goal.definition)
    clean = make_funnel(name, goals).name
    taken = named(site, clean)
    if taken is not None and taken is not keep:
        raise InvalidFunnel(
            f"This site already has a funnel named {clean!r}; choose another name.", "name"
        )
    return clean


def _set_steps(row: Funnel, goal_ids: list[int]) -> None:
    row.steps.clear()
    db.session.flush()  # the old positions go before the new ones arrive
    row.steps.extend(
        FunnelStep(position=index, goal_id=goal_id) for index, goal_id in enumerate(goal_ids)
    )


def add_funnel(
    site: Site, name: str, goal_ids: list[int], *, across_visits: bool = False
) -> Funnel:
    """Add a funnel of these goals (ids, in order); raise InvalidFunnel when it is not one."""
    count = db.session.scalar(select(func.count()).where(Funnel.site_id == site.id)) or 0
    if count >= MAX_FUNNELS:
        raise InvalidFunnel(
            f"A site has at most {MAX_FUNNELS} funnels; remove one to add another.", "funnels"
        )
    row = Funnel(site_id=site.id, name=_checked(site, name, goal_ids), across_visits=across_visits)
    db.session.add(row)
    _set_steps(row, goal_ids)
    db.session.commit()
    return row


def update_funnel(
    row: Funnel, name: str, goal_ids: list[int], *, across_visits: bool = False
) -> Funnel:
    """Replace a funnel's name, steps and how it follows them."""
    row.name = _checked(row.site, name, goal_ids, keep=row)
    row.across_visits = across_visits
    _set_steps(row, goal_ids)
    db.session.commit()
    return row


def delete_funnel(row: Funnel) -> None:
    """Remove a funnel (its goals stay)."""
    db.session.delete(row)
    db.session.commit()


def funnels_using(goal_id: int) -> list[str]:
    """Return the names of the funnels a goal is a step of."""
    return list(
        db.session.scalars(
            select(Funnel.name)
            .join(FunnelStep, FunnelStep.funnel_id == Funnel.id)
            .where(FunnelStep.goal_id == goal_id)
            .distinct()
            .order_by(Funnel.name)
        )
    )
