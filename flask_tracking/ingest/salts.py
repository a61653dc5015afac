"""Daily-rotating salts for visitor hashes: one per UTC day, deleted after 48 hours."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from flask_tracking.database import write_transaction
from flask_tracking.extensions import db
from flask_tracking.ingest.visitors import new_salt
from flask_tracking.tracking.analytics import Salt


class Salts:
    """The writer's view of the salts table, cached per day."""

    def __init__(self) -> None:
        self._cache: dict[date, bytes] = {}

    def for_day(self, day: date, today: date) -> bytes:
        """Return the salt of `day`; days older than yesterday use today's (theirs is gone)."""
        if day < today - timedelta(days=1) or day > today:
            day = today
        if day not in self._cache:
            self._cache[day] = self._load_or_create(day)
        return self._cache[day]

    def rotate(self, today: date) -> None:
        """Delete salts older than yesterday: after 48 hours no hash can be recomputed."""
        db.session.execute(delete(Salt).where(Salt.day < today - timedelta(days=1)))
        self._cache = {d: s for d, s in self._cache.items() if d >= today - timedelta(days=1)}

    @staticmethod
    def _load_or_create(day: date) -> bytes:
        salt = db.session.scalar(select(Salt.salt).where(Salt.day == day))
        if salt is not None:
            return bytes(salt)
        try:
            # Committed on its own: a hash made with a salt must never outlive a rolled-back salt.
            with write_transaction():
                db.session.add(Salt(day=day, salt=new_salt()))
        except IntegrityError:
            pass  # another writer made it first; use theirs
        return bytes(db.session.scalar(select(Salt.salt).where(Salt.day == day)) or b"")
