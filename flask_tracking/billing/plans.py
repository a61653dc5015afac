"""Plans: what an operator sells, read from a TOML file (BILLING_PLANS_FILE).

A plan names its limits (events a month, sites, team seats, retention, API access), its trial,
what happens over quota and when a subscription ends, and its prices (an amount in the
currency's minor unit per interval; with Stripe, the Stripe price id that charges it). The
file is read and checked once, when the app starts: a mistake stops the start with the file,
the key and the reason. See docs/billing.md for the format.

Plans are versioned: an operator who changes a price or a limit bumps `version`. A
subscription keeps the terms it was bought at (`Plan.terms()`, stored on the subscription),
so a new version applies to new subscribers and to those who change plan — never silently to
someone already paying.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from babel.numbers import format_currency, get_currency_precision, is_currency

INTERVALS = ("month", "year")
OVER_QUOTA = ("drop", "hide")


class PlansError(ValueError):
    """The plans file is not valid: where and why."""


@dataclass(frozen=True)
class Price:
    currency: str  # ISO 4217, upper case
    interval: str  # "month" or "year"
    amount: int  # in the currency's minor unit (cents)
    stripe_price: str = ""

    @property
    def key(self) -> str:
        """How forms and URLs name this price of its plan: "eur-month"."""
        return f"{self.currency.lower()}-{self.interval}"

    def display(self, locale: str = "en") -> str:
        """The amount with its currency, as the locale writes it: "€19.00 a month"."""
        return f"{money(self.amount, self.currency, locale)} a {self.interval}"


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    version: int
    events_per_month: int
    sites: int
    seats: int
    retention_days: int
    api_access: bool
    trial_days: int
    grace_percent: int
    over_quota: str  # "drop" or "hide"
    on_end: str  # "lock" or "downgrade:<plan key>"
    prices: tuple[Price, ...] = field(default=())

    @property
    def free(self) -> bool:
        return not self.prices

    def price(self, key: str) -> Price | None:
        return next((p for p in self.prices if p.key == key), None)

    def terms(self) -> dict[str, Any]:
        """What a subscriber keeps while this version is theirs (stored on the subscription)."""
        terms = asdict(self)
        terms["prices"] = [asdict(p) for p in self.prices]
        return terms

    @classmethod
    def from_terms(cls, terms: dict[str, Any]) -> Plan:
        values = dict(terms)
        values["prices"] = tuple(Price(**p) for p in values.get("prices", ()))
        return cls(**values)

    @property
    def limit_with_grace(self) -> int:
        """The events a month after which the over-quota behaviour starts."""
        return self.events_per_month + self.events_per_month * self.grace_percent // 100


@dataclass(frozen=True)
class Plans:
    default: str  # the plan of accounts without a subscription
    plans: dict[str, Plan]

    def get(self, key: str) -> Plan | None:
        return self.plans.get(key)

    def __iter__(self) -> Any:
        return iter(self.plans.values())

    def by_stripe_price(self, price_id: str) -> tuple[Plan, Price] | None:
        """The plan and price a Stripe price id charges (the file's current version)."""
        for plan in self.plans.values():
            for price in plan.prices:
                if price.stripe_price and price.stripe_price == price_id:
                    return plan, price
        return None


def money(amount: int, currency: str, locale: str = "en") -> str:
    """An amount in minor units, formatted by Babel (CLDR): the currency's own decimals."""
    return format_currency(amount / 10 ** get_currency_precision(currency), currency, locale=locale)


_PLAN_KEYS = {
    "name": str,
    "version": int,
    "events_per_month": int,
    "sites": int,
    "seats": int,
    "retention_days": int,
    "api_access": bool,
    "trial_days": int,
    "grace_percent": int,
    "over_quota": str,
    "on_end": str,
    "prices": list,
}
_DEFAULTS: dict[str, Any] = {
    "version": 1,
    "seats": 1,
    "retention_days": 365,
    "api_access": True,
    "trial_days": 0,
    "grace_percent": 10,
    "over_quota": "drop",
    "on_end": "lock",
    "prices": [],
}


def load(path: str | None, *, require_stripe: bool = False) -> Plans:
    """Read and check a plans file; no path: the built-in example plans (development)."""
    if path:
        where = path
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except OSError as error:
            raise PlansError(f"{where}: cannot be read: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise PlansError(f"{where}: not valid TOML: {error}") from None
    else:
        where = "the built-in plans (flask_tracking/billing/plans.toml)"
        data = tomllib.loads(resources.files(__package__).joinpath("plans.toml").read_text())
    return parse(data, where, require_stripe=require_stripe)


def parse(data: dict[str, Any], where: str, *, require_stripe: bool = False) -> Plans:
    """Check a parsed plans document; raise PlansError naming the key at fault."""

    def fail(key: str, reason: str) -> PlansError:
        return PlansError(f"{where}: {key}: {reason}")

    unknown = set(data) - {"default", "plans"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown key (expected `default` and `[plans.*]`)")
    tables = data.get("plans")
    if not isinstance(tables, dict) or not tables:
        raise fail("plans", "at least one [plans.<key>] table is needed")
    plans = {key: _plan(key, table, fail, require_stripe) for key, table in tables.items()}
    default = data.get("default")
    if not isinstance(default, str) or default not in plans:
        raise fail("default", "must name one of the plans (the plan of accounts without one)")
    for plan in plans.values():
        end = plan.on_end
        target = end.removeprefix("downgrade:")
        if end != "lock" and (not end.startswith("downgrade:") or target not in plans):
            raise fail(f"plans.{plan.key}.on_end", 'must be "lock" or "downgrade:<a plan\'s key>"')
    return Plans(default=default, plans=plans)


def _plan(key: str, table: Any, fail: Any, require_stripe: bool) -> Plan:
    name = f"plans.{key}"
    if not key.replace("-", "").replace("_", "").isalnum() or len(key) > 40:
        raise fail(name, "a plan key is letters, digits, - and _ (at most 40)")
    if not isinstance(table, dict):
        raise fail(name, "must be a table")
    values = {**_DEFAULTS, **table}
    for item in sorted(set(values) - set(_PLAN_KEYS)):
        raise fail(f"{name}.{item}", "unknown key")
    for item, kind in _PLAN_KEYS.items():
        value = values.get(item)
        if item not in values:
            raise fail(f"{name}.{item}", "is required")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise fail(f"{name}.{item}", f"must be {kind.__name__}, not {value!r}")
        if isinstance(value, int) and value < 0:
            raise fail(f"{name}.{item}", "must not be negative")
    if values["over_quota"] not in OVER_QUOTA:
        raise fail(f"{name}.over_quota", f"must be one of {', '.join(OVER_QUOTA)}")
    if not values["name"].strip():
        raise fail(f"{name}.name", "must not be empty")
    prices = tuple(
        _price(entry, f"{name}.prices[{index}]", fail, require_stripe)
        for index, entry in enumerate(values["prices"])
    )
    if len({p.key for p in prices}) != len(prices):
        raise fail(f"{name}.prices", "two prices with the same currency and interval")
    values["prices"] = prices
    return Plan(key=key, **values)


def _price(entry: Any, name: str, fail: Any, require_stripe: bool) -> Price:
    if not isinstance(entry, dict):
        raise fail(name, "must be a table {currency, interval, amount}")
    for item in set(entry) - {"currency", "interval", "amount", "stripe_price"}:
        raise fail(f"{name}.{item}", "unknown key")
    currency = str(entry.get("currency", "")).upper()
    if not is_currency(currency):
        raise fail(f"{name}.currency", "must be an ISO 4217 currency code such as EUR or USD")
    if entry.get("interval") not in INTERVALS:
        raise fail(f"{name}.interval", "must be month or year")
    amount = entry.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise fail(f"{name}.amount", "must be a positive whole number of minor units (cents)")
    stripe_price = entry.get("stripe_price", "")
    if not isinstance(stripe_price, str):
        raise fail(f"{name}.stripe_price", "must be a string")
    if require_stripe and not stripe_price:
        raise fail(f"{name}.stripe_price", "is required with BILLING_PROVIDER=stripe")
    return Price(currency, entry["interval"], amount, stripe_price)
