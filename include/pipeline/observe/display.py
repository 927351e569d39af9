"""A dashboard query's rows made readable: counts as integers, no `None`, times without
microseconds, headings from `labels.label`. Used by the local dashboard (dashboard/app.py) and
by its browser test, which compares what the page shows with `shown(value)` of the SQL's rows.
"""

from __future__ import annotations

import datetime as dt
import decimal

import pandas as pd

from include.pipeline.observe.labels import label

MISSING = "–"


def chartable(frame: pd.DataFrame) -> pd.DataFrame:
    """numeric(…) arrives as Decimal: whole numbers become Int64, the others float."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column].dropna()
        if values.empty:
            continue
        if values.map(lambda v: isinstance(v, decimal.Decimal)).all():
            whole = values.map(lambda v: v == v.to_integral_value()).all()
            frame[column] = frame[column].astype("Int64" if whole else float)
        elif pd.api.types.is_float_dtype(frame[column]) and (values == values.round()).all() and _count(column):
            frame[column] = frame[column].astype("Int64")  # an int column with a NULL arrives as float
    return frame


def _count(column: str) -> bool:
    return not column.endswith(("_seconds", "_hours", "_pct", "revenue"))


def decimals(values) -> int:
    """The fewest decimals (at most 2) that write every one of `values` exactly."""
    numbers = [float(v) for v in values if isinstance(v, (int, float, decimal.Decimal)) and not pd.isna(v)]
    return next((d for d in (0, 1) if all(round(v, d) == v for v in numbers)), 2)


def shown(value, places: int | None = None) -> str:
    """How the page writes one value; numbers with `places` decimals (default: as few as it needs)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float, decimal.Decimal)):
        places = decimals([value]) if places is None else places
        return f"{float(value):,.{places}f}" if places else f"{round(float(value)):,}"
    return str(value)


UNITS = {"percent": " %", "s": " s"}


def stat(column: str, value, unit: str | None = None) -> tuple[str, str]:
    """A stat panel's (heading, figure) for one column of its single row."""
    text = shown(value)
    if text != MISSING and column.endswith(("_pct", "_seconds")):
        text += UNITS.get(unit or "", "")
    return label(column), text


def table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as the text `shown` gives, headed by `label`: what a table panel displays."""
    out = frame.copy().astype(object)
    for column in out.columns:
        places = decimals(out[column])  # one column, one number of decimals
        out[column] = out[column].map(lambda v, p=places: shown(v, p))
    return out.rename(columns=label)
