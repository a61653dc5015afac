"""How a dimension's values are compared and read back, per engine.

DuckDB keeps dimension values as integer codes of the `dict` table (grouping and comparing
integers is markedly faster there); ClickHouse keeps the text, LowCardinality. Queries never
compare a dimension column directly: they ask the engine's Encoding for the condition, and for
the text of a code when they return one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    select,
    true,
)

from flask_tracking.events.schema import DICTIONARY_IDS
from flask_tracking.events.sql import number
from flask_tracking.events.tables import tables

# "matches": a regular expression (RE2 syntax, which ClickHouse's match() shares), for goals.
Operator = Literal["is", "is_not", "contains", "matches"]
NONE = ""  # "not set", as reports and filters write it
# A filter matching at most this many dictionary values has their codes written into the
# statements; beyond, each statement looks them up.
INLINE_CODES = 256


class Encoding(Protocol):
    """Conditions on, and the text of, a dimension column."""

    def resolve(self, store: Any, dictionary: str, operator: Operator, value: str) -> Any:
        """Return what `condition` may be given as `known` for these arguments: found once
        per report, it spares each statement a lookup (None: nothing to find)."""

    def condition(
        self, column: Any, dictionary: str, operator: Operator, value: str, known: Any = None
    ) -> ColumnElement[bool]:
        """Return the SQL condition `column operator value` (value "" meaning "not set")."""

    def text(self, column: Any, dictionary: str) -> ColumnElement[Any]:
        """Return an expression reading the column's value as text ("" when not set)."""

    def codes(self, column: Any, dictionary: str, values: list[str]) -> ColumnElement[bool]:
        """Return `column IN values` (exact text values)."""

    def texts(self, store: Any, wanted: Mapping[str, Iterable[Any]]) -> dict[str, dict[Any, str]]:
        """Return the text of each stored value ("" for "not set"), per dictionary, for the
        values wanted of each dictionary."""

    def prop_pairs(self, events: Any, where: list[ColumnElement[bool]]) -> Any:
        """Return a subquery of (vd, day, key, value) for every property of matching events."""


def _prop_value_duckdb(value: Any) -> Any:
    """A JSON value as text: strings unquoted, numbers and booleans as JSON writes them."""
    return case(
        (func.json_type(value) == "VARCHAR", func.json_extract_string(value, "$")),
        else_=cast(value, String),
    )


class Codes:
    """DuckDB: dimension columns hold codes of `dict`; 0 is "not set"."""

    def __init__(self) -> None:
        self.dict = tables("duckdb").dictionary
        self.inline_codes = INLINE_CODES

    def _lookup(self, dictionary: str, match: ColumnElement[bool]) -> Any:
        d = self.dict.c
        return select(d.code).where(d.dictionary == number(DICTIONARY_IDS[dictionary]), match)

    def _matching(self, dictionary: str, operator: Operator, value: str) -> Any:
        d = self.dict.c
        if operator == "contains":
            return self._lookup(dictionary, d.value.icontains(value, autoescape=True))
        if operator == "matches":
            return self._lookup(dictionary, func.regexp_matches(d.value, value))
        return self._lookup(dictionary, d.value == value)

    def resolve(self, store: Any, dictionary: str, operator: Operator, value: str) -> Any:
        """The codes the filter's value stands for, when they are few enough to be written
        into the statements (`country = 17` lets DuckDB filter as it scans; a lookup in each
        statement cost a fifth of a 12-month panel query at 10 M events)."""
        if value == NONE and operator in ("is", "is_not"):
            return None
        statement = self._matching(dictionary, operator, value).limit(self.inline_codes + 1)
        codes = sorted(int(row[0]) for row in store.fetch(statement))
        return codes if len(codes) <= self.inline_codes else None

    def condition(
        self, column: Any, dictionary: str, operator: Operator, value: str, known: Any = None
    ) -> ColumnElement[bool]:
        """Compare codes: the value's code (or codes, for contains) found in `dict` — or
        `known` from `resolve`, written into the statement."""
        if value == NONE and operator in ("is", "is_not"):
            return column == 0 if operator == "is" else column != 0  # type: ignore[no-any-return]
        found: Any = self._matching(dictionary, operator, value)
        if known is not None:
            found = [literal_column(str(int(code))) for code in known]
            if not found:  # no such value: nothing is it, everything is not it
                return false() if operator != "is_not" else true()
        return column.not_in(found) if operator == "is_not" else column.in_(found)  # type: ignore[no-any-return]

    def codes(self, column: Any, dictionary: str, values: list[str]) -> ColumnElement[bool]:
        """Match any of the values (their codes)."""
        return column.in_(self._lookup(dictionary, self.dict.c.value.in_(values)))  # type: ignore[no-any-return]

    def texts(self, store: Any, wanted: Mapping[str, Iterable[Any]]) -> dict[str, dict[Any, str]]:
        """Look the codes up in `dict`: all dictionaries in one query."""
        found: dict[str, dict[Any, str]] = {name: {0: NONE, None: NONE} for name in wanted}
        names = {DICTIONARY_IDS[name]: name for name in wanted}
        pairs = [
            (DICTIONARY_IDS[name], code)
            for name, values in wanted.items()
            for code in sorted({int(value) for value in values if value})
        ]
        if pairs:
            # The (dictionary, code) pairs as two list parameters, joined: an IN list of
            # thousands of parameters took ~100 ms to compile and bind, this ~5 ms.
            d = self.dict.c
            ids = bindparam(None, [pair[0] for pair in pairs], type_=ARRAY(Integer))
            codes = bindparam(None, [pair[1] for pair in pairs], type_=ARRAY(Integer))
            asked = select(
                func.unnest(ids).label("dictionary"), func.unnest(codes).label("code")
            ).subquery()
            statement = select(d.dictionary, d.code, d.value).join_from(
                asked, self.dict, and_(d.dictionary == asked.c.dictionary, d.code == asked.c.code)
            )
            for dictionary, code, value in store.fetch(statement):
                found[names[int(dictionary)]][int(code)] = str(value)
        return found

    def prop_pairs(self, events: Any, where: list[ColumnElement[bool]]) -> Any:
        """Unnest the JSON object with json_each."""
        # nullif: DuckDB may call json_each before the WHERE has dropped the empty ones.
        props = func.nullif(events.c.props, "")
        pairs = func.json_each(props).table_valued("key", "value").alias("j")
        return (
            select(
                events.c.vd,
                events.c.ts,
                events.c.day,
                pairs.c.key.label("key"),
                _prop_value_duckdb(pairs.c.value).label("value"),
            )
            .select_from(events)
            .join(pairs, true())
            .where(*where)
            .subquery("pairs")
        )

    def text(self, column: Any, dictionary: str) -> ColumnElement[Any]:
        """The code's text, through `dict` ("" for 0)."""
        d = self.dict.c
        value = (
            select(d.value)
            .where(and_(d.dictionary == number(DICTIONARY_IDS[dictionary]), d.code == column))
            .scalar_subquery()
        )
        return func.coalesce(value, literal(NONE))


class Text:
    """ClickHouse: dimension columns hold their text; "" is "not set"."""

    def resolve(self, store: Any, dictionary: str, operator: Operator, value: str) -> Any:
        """Nothing to find: the condition compares the text itself."""
        return None

    def condition(
        self, column: Any, dictionary: str, operator: Operator, value: str, known: Any = None
    ) -> ColumnElement[bool]:
        """Compare the text itself."""
        if operator == "contains":
            return column.icontains(value, autoescape=True)  # type: ignore[no-any-return]
        if operator == "matches":
            return func.match(column, value)
        return column == value if operator == "is" else column != value  # type: ignore[no-any-return]

    def codes(self, column: Any, dictionary: str, values: list[str]) -> ColumnElement[bool]:
        """Match any of the values."""
        return column.in_(values)  # type: ignore[no-any-return]

    def texts(self, store: Any, wanted: Mapping[str, Iterable[Any]]) -> dict[str, dict[Any, str]]:
        """The values are their own text."""
        return {
            name: {value: str(value or NONE) for value in values} for name, values in wanted.items()
        }

    def prop_pairs(self, events: Any, where: list[ColumnElement[bool]]) -> Any:
        """Unnest the JSON object with ARRAY JOIN of JSONExtractKeysAndValuesRaw."""
        pair: Any = literal_column("prop_pair")
        raw = func.tupleElement(pair, 2)
        value = func.if_(func.startsWith(raw, '"'), func.JSONExtractString(raw), raw)
        source = (
            select(events.c.vd, events.c.ts, events.c.day, events.c.props)
            .where(*where)
            .subquery("e")
        )
        return (
            select(
                source.c.vd,
                source.c.ts,
                source.c.day,
                func.tupleElement(pair, 1).label("key"),
                value.label("value"),
            )
            .select_from(source)
            .suffix_with("")
            .subquery("pairs")
        )

    def text(self, column: Any, dictionary: str) -> ColumnElement[Any]:
        """The column itself."""
        return column  # type: ignore[no-any-return]
