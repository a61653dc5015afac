"""The plans file: the built-in example is valid; every kind of mistake names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flask_tracking.billing import plans

GOOD = """
default = "free"
[plans.free]
name = "Free"
events_per_month = 1000
sites = 1
[plans.pro]
name = "Pro"
version = 3
events_per_month = 50_000
sites = 5
trial_days = 7
on_end = "downgrade:free"
prices = [{ currency = "EUR", interval = "month", amount = 1200, stripe_price = "price_1" }]
"""


def test_the_built_in_plans_are_valid() -> None:
    loaded = plans.load(None)
    assert loaded.default == "free"
    assert loaded.plans["free"].free and not loaded.plans["growth"].free
    assert loaded.plans["growth"].limit_with_grace == 110_000


def test_a_file_is_read_with_defaults_and_versions(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(GOOD)
    loaded = plans.load(str(path), require_stripe=True)
    pro = loaded.plans["pro"]
    assert (pro.version, pro.grace_percent, pro.over_quota, pro.api_access) == (3, 10, "drop", True)
    assert pro.price("eur-month") == plans.Price("EUR", "month", 1200, "price_1")
    assert loaded.by_stripe_price("price_1") == (pro, pro.prices[0])
    assert loaded.by_stripe_price("price_unknown") is None
    # A subscription keeps the terms it was bought at, whatever the file says later.
    assert plans.Plan.from_terms(pro.terms()) == pro


def _pro(data: dict[str, Any]) -> dict[str, Any]:
    return data["plans"]["pro"]  # type: ignore[no-any-return]


def _price(data: dict[str, Any]) -> dict[str, Any]:
    return _pro(data)["prices"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("default"), "default: must name one of the plans"),
        (lambda d: d.update(default="gold"), "default: must name one of the plans"),
        (lambda d: d.update(extra=1), "extra: unknown key"),
        (
            lambda d: _pro(d).pop("events_per_month"),
            "events_per_month: is required",
        ),
        (lambda d: _pro(d).update(sites="5"), "plans.pro.sites: must be int"),
        (lambda d: _pro(d).update(sites=-1), "plans.pro.sites: must not be negative"),
        (lambda d: _pro(d).update(api_access=1), "plans.pro.api_access: must be bool"),
        (lambda d: _pro(d).update(colour="red"), "plans.pro.colour: unknown key"),
        (
            lambda d: _pro(d).update(over_quota="wait"),
            "over_quota: must be one of",
        ),
        (lambda d: _pro(d).update(on_end="downgrade:gold"), "plans.pro.on_end"),
        (
            lambda d: _price(d).update(currency="EURO"),
            "currency: must be an ISO",
        ),
        (
            lambda d: _price(d).update(interval="week"),
            "interval: must be month",
        ),
        (lambda d: _price(d).update(amount=0), "amount: must be a positive"),
        (lambda d: _price(d).update(amount=9.5), "amount: must be a positive"),
        (lambda d: _price(d).pop("stripe_price"), "stripe_price: is required"),
        (
            lambda d: _pro(d)["prices"].append(dict(_price(d))),
            "plans.pro.prices: two prices with the same currency and interval",
        ),
        (lambda d: d["plans"].update({"b@d": {}}), "plans.b@d: a plan key is"),
    ],
)
def test_mistakes_name_their_key(change: Any, message: str) -> None:
    import tomllib

    data = tomllib.loads(GOOD)
    change(data)
    with pytest.raises(plans.PlansError, match="plans.toml: .*" + __import__("re").escape(message)):
        plans.parse(data, "plans.toml", require_stripe=True)


def test_a_file_that_is_not_toml_or_missing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text("default = \n")
    with pytest.raises(plans.PlansError, match="not valid TOML"):
        plans.load(str(path))
    with pytest.raises(plans.PlansError, match="cannot be read"):
        plans.load(str(tmp_path / "missing.toml"))


def test_amounts_are_formatted_by_babel() -> None:
    assert plans.money(1900, "EUR") == "€19.00"
    assert plans.money(1900, "EUR", "de_DE") == "19,00\xa0€"
    assert plans.money(1000, "JPY") == "¥1,000"  # no minor unit
    assert plans.Price("USD", "year", 9900).display() == "$99.00 a year"
