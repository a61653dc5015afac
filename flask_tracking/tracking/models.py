"""Sites, their goals, funnels and experiments, and their shared links.

(Their events live in the event store: events/.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_tracking.extensions import db
from flask_tracking.reports import experiments as experiment_rules
from flask_tracking.reports import funnels as funnel_rules
from flask_tracking.reports import goals as goal_rules
from flask_tracking.reports.ranges import as_utc
from flask_tracking.users.models import User, utcnow


class Site(db.Model):  # type: ignore[name-defined]
    """A website whose visits an owner tracks."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    base_url: Mapped[str] = mapped_column(String(2048))
    name: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # One CIDR or address per line; one path glob per line (see ingest/exclusions.py).
    excluded_ips: Mapped[str] = mapped_column(Text, default="", server_default="")
    excluded_paths: Mapped[str] = mapped_column(Text, default="", server_default="")
    # An IANA zone name: where a report's days, weeks and months begin (see reports/ranges.py).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Days of events kept (ops/jobs.py purges older ones); None: the server's RETENTION_DAYS.
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    # Events sent by Umami's trackers name the site by a website id (a UUID): the old one, to
    # move a site without touching its pages (collector/compat.py). Unique across sites.
    umami_id: Mapped[str | None] = mapped_column(String(36), unique=True, index=True, default=None)

    owner: Mapped[User] = relationship()
    goals: Mapped[list[Goal]] = relationship(
        back_populates="site", order_by="Goal.id", passive_deletes=True
    )
    funnels: Mapped[list[Funnel]] = relationship(
        back_populates="site", order_by="Funnel.id", passive_deletes=True
    )
    experiments: Mapped[list[Experiment]] = relationship(
        back_populates="site", order_by="Experiment.id", passive_deletes=True
    )

    @property
    def definitions(self) -> tuple[goal_rules.Goal, ...]:
        """Return the site's goals as reports apply them, in the order they were defined."""
        return tuple(goal.definition for goal in self.goals)

    @property
    def display_name(self) -> str:
        """Return the name, or the base URL when no name was given."""
        return self.name or self.base_url

    def __repr__(self) -> str:
        return f"<Site {self.id} {self.base_url}>"


class Membership(db.Model):  # type: ignore[name-defined]
    """A user's role on a site that another user owns (tracking/access.py says what it allows)."""

    __tablename__ = "site_members"
    __table_args__ = (UniqueConstraint("site_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer, editor or admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    site: Mapped[Site] = relationship()
    user: Mapped[User] = relationship()


class Invitation(db.Model):  # type: ignore[name-defined]
    """An invitation by email to join a site with a role: a random token whose SHA-256 is kept,
    used once, expiring (INVITATION_DAYS)."""

    __tablename__ = "site_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    site: Mapped[Site] = relationship()
    invited_by: Mapped[User | None] = relationship()


class SharedLink(db.Model):  # type: ignore[name-defined]
    """A secret, revocable, read-only link to a site's dashboard, optionally with a password."""

    __tablename__ = "shared_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    # The link's secret part: 32 random bytes, URL-safe. Revoking deletes the row.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Origins (scheme://host[:port]) allowed to show the dashboard in a frame, one per line;
    # empty: no site may frame it (clickjacking). See security.py.
    embed_origins: Mapped[str] = mapped_column(Text, default="", server_default="")
    # k-anonymity (dashboard/privacy.py): values with fewer visitors are folded into
    # "Other", and filters that leave fewer are refused; 1 shows everything.
    min_visitors: Mapped[int] = mapped_column(Integer, default=5, server_default="5")

    site: Mapped[Site] = relationship()

    @property
    def origins(self) -> list[str]:
        """Return the origins allowed to embed this dashboard."""
        return [line for line in self.embed_origins.splitlines() if line]


class Goal(db.Model):  # type: ignore[name-defined]
    """A conversion a site owner counts: a pageview goal or a custom-event goal, with an
    optional revenue property (reports/goals.py holds the rules and what each field means)."""

    __tablename__ = "goals"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_goals_site_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(goal_rules.MAX_NAME))
    kind: Mapped[str] = mapped_column(String(8))  # "page" or "event"
    path: Mapped[str] = mapped_column(String(goal_rules.MAX_PATTERN), default="")
    event: Mapped[str] = mapped_column(String(goal_rules.MAX_EVENT), default="")
    prop_key: Mapped[str] = mapped_column(String(goal_rules.MAX_PROPERTY), default="")
    prop_value: Mapped[str] = mapped_column(String(goal_rules.MAX_PROPERTY), default="")
    revenue_prop: Mapped[str] = mapped_column(String(goal_rules.MAX_PROPERTY), default="")
    currency: Mapped[str] = mapped_column(String(3), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    site: Mapped[Site] = relationship(back_populates="goals")

    @property
    def definition(self) -> goal_rules.Goal:
        """Return the goal as reports apply it."""
        return goal_rules.Goal(
            self.name,
            "page" if self.kind == "page" else "event",
            path=self.path,
            event=self.event,
            prop_key=self.prop_key,
            prop_value=self.prop_value,
            revenue_prop=self.revenue_prop,
            currency=self.currency,
        )

    def set(self, definition: goal_rules.Goal) -> None:
        """Store a checked definition in this row."""
        self.name, self.kind = definition.name, definition.kind
        self.path, self.event = definition.path, definition.event
        self.prop_key, self.prop_value = definition.prop_key, definition.prop_value
        self.revenue_prop, self.currency = definition.revenue_prop, definition.currency


class Funnel(db.Model):  # type: ignore[name-defined]
    """An ordered list of a site's goals (reports/funnels.py says how it is followed)."""

    __tablename__ = "funnels"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_funnels_site_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(goal_rules.MAX_NAME))
    # Follow the steps across the visits of a visitor-day, not within one visit.
    across_visits: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    site: Mapped[Site] = relationship(back_populates="funnels")
    steps: Mapped[list[FunnelStep]] = relationship(
        order_by="FunnelStep.position", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def definition(self) -> funnel_rules.Funnel:
        """Return the funnel as reports apply it."""
        return funnel_rules.Funnel(self.name, tuple(step.goal.definition for step in self.steps))


class FunnelStep(db.Model):  # type: ignore[name-defined]
    """One step of a funnel: a goal, at a position. A goal in a funnel cannot be deleted."""

    __tablename__ = "funnel_steps"

    funnel_id: Mapped[int] = mapped_column(
        ForeignKey("funnels.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Checked at commit: a site's deletion cascades to its goals and to its funnels' steps in
    # an order PostgreSQL does not promise, so an immediate check (RESTRICT, or NO ACTION,
    # which PostgreSQL applies per cascaded statement) can fail on the way.
    goal_id: Mapped[int] = mapped_column(
        ForeignKey("goals.id", deferrable=True, initially="DEFERRED"), index=True
    )

    goal: Mapped[Goal] = relationship()


class Experiment(db.Model):  # type: ignore[name-defined]
    """An A/B experiment of a site (reports/experiments.py holds the rules)."""

    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("site_id", "key", name="uq_experiments_site_id_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))  # what pages and servers call it
    name: Mapped[str] = mapped_column(String(goal_rules.MAX_NAME))
    status: Mapped[str] = mapped_column(String(8), default="draft")
    # [[name, weight], ...], the control first: read and written only through `definition`.
    variants: Mapped[list[list[str | int]]] = mapped_column(JSON)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    site: Mapped[Site] = relationship(back_populates="experiments")
    goals: Mapped[list[ExperimentGoal]] = relationship(
        order_by="ExperimentGoal.position", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def definition(self) -> experiment_rules.Experiment:
        """Return the experiment as reports apply it."""
        return experiment_rules.Experiment(
            self.key,
            self.name,
            tuple(experiment_rules.Variant(str(n), int(w)) for n, w in self.variants),
            tuple(link.goal.definition for link in self.goals),
            None if self.starts_at is None else as_utc(self.starts_at),
            None if self.ends_at is None else as_utc(self.ends_at),
            self.status,
        )


class ExperimentGoal(db.Model):  # type: ignore[name-defined]
    """A goal an experiment is judged on: position 0 is the primary goal."""

    __tablename__ = "experiment_goals"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Checked at commit, like a funnel step's (see FunnelStep.goal_id).
    goal_id: Mapped[int] = mapped_column(
        ForeignKey("goals.id", deferrable=True, initially="DEFERRED"), index=True
    )

    goal: Mapped[Goal] = relationship()


class Erasure(db.Model):  # type: ignore[name-defined]
    """A request to erase visitors' data from a site (tracking/erasure.py): one visitor-day by
    its id, or every visitor with an event on a page in a time range. The writer's `erasures`
    job carries it out and records what it deleted."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    visitor_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    page: Mapped[str] = mapped_column(String(2048), default="")
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    visitors: Mapped[int] = mapped_column(Integer, default=0)  # visitor-days erased
    rows: Mapped[int] = mapped_column(Integer, default=0)  # stored rows deleted
