"""The analysts' Python client: the serving views as pandas DataFrames or Arrow tables.

    from serving_layer.client import Client

    c = Client()                                   # CONCORD_* settings, catalog `lake`
    c.bars("binance", "BTC-USDT", interval="5m", start="2026-11-23T10:00")
    c.ticker()                                     # last trade per exchange and symbol
    c.spread("BTC-USDT")                           # cross-exchange spread per minute
    c.query("SELECT ... FROM lake.serving.bars_1m WHERE symbol = ?", ["ETH-USDT"],
            output="arrow")

Every call is one Trino query through the serving layer (`serving_layer.trino.connect`),
with bound parameters for the values it is given. Columns keep their SQL types: decimals
arrive as exact `Decimal` (Arrow decimal128), timestamps in UTC. Rows are ordered by
their keys and time, so two calls over the same data give the same frame.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from serving_layer.trino import connect
from shared.config import Settings, load_settings

if TYPE_CHECKING:
    import pandas as pd

Output = Literal["pandas", "arrow"]
INTERVALS = {"1m": "bars_1m", "5m": "bars_5m", "1h": "bars_1h"}

_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")
_TIMESTAMP = re.compile(r"timestamp\((\d+)\)( with time zone)?")
_SIMPLE = {
    "varchar": pa.string(), "char": pa.string(), "bigint": pa.int64(), "integer": pa.int32(),
    "smallint": pa.int16(), "tinyint": pa.int8(), "double": pa.float64(), "real": pa.float32(),
    "boolean": pa.bool_(), "date": pa.date32(),
}


def arrow_type(trino_type: str) -> pa.DataType | None:
    """The Arrow type for a Trino column type name; None: let Arrow infer it."""
    name = trino_type.lower()
    if m := _DECIMAL.fullmatch(name):
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    if m := _TIMESTAMP.fullmatch(name):
        unit = "ms" if int(m.group(1)) <= 3 else "us"
        return pa.timestamp(unit, tz="UTC" if m.group(2) else None)
    return _SIMPLE.get(re.sub(r"\(.*\)$", "", name))


def to_arrow(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows of a Trino result with its (name, type) columns as one Arrow table."""
    arrays = []
    for i, (_, trino_type) in enumerate(columns):
        values = [r[i] for r in rows]
        typ = arrow_type(trino_type)
        if typ is not None and pa.types.is_timestamp(typ) and typ.tz:
            values = [v.astimezone(UTC) if v is not None else None for v in values]
        arrays.append(pa.array(values, type=typ))
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])


def _moment(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class Client:
    """Queries of the serving views, as the configured Trino user (or `user`)."""

    def __init__(self, settings: Settings | None = None, *, user: str | None = None) -> None:
        self.settings = settings or load_settings()
        self.user = user
        self.catalog = self.settings.catalog
        # One connection per thread, kept: its HTTPS session (TLS handshake, keep-alive)
        # is reused by the thread's next queries.
        self._local = threading.local()

    def query(self, sql: str, params: Sequence[Any] | None = None, *,
              output: Output = "pandas") -> pd.DataFrame | pa.Table:
        """Any SQL, `?` placeholders bound to `params`; a DataFrame or an Arrow table."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.settings, user=self.user)
        try:
            cur = conn.cursor()
            cur.execute(sql, list(params) if params else None)
            rows = cur.fetchall()
            columns = [(d[0], d[1]) for d in cur.description or []]
        except Exception:
            self._local.conn = None  # a broken connection is not reused
            conn.close()
            raise
        table = to_arrow(columns, rows)
        return table if output == "arrow" else table.to_pandas()

    def bars(self, exchange: str, symbol: str, *, interval: str = "1m",
             start: datetime | str | None = None, end: datetime | str | None = None,
             output: Output = "pandas") -> pd.DataFrame | pa.Table:
        """OHLCV bars (with vwap) of one book, oldest first; [start, end) on window_start."""
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
        where, params = ["exchange = ?", "symbol = ?"], [exchange, symbol]
        where, params = self._window(where, params, start, end)
        return self.query(f"SELECT * FROM {self.catalog}.serving.{INTERVALS[interval]} "  # noqa: S608 - fixed names; values bound
                          f"WHERE {' AND '.join(where)} ORDER BY window_start",
                          params, output=output)

    def ticker(self, *, exchange: str | None = None, symbol: str | None = None,
               output: Output = "pandas") -> pd.DataFrame | pa.Table:
        """The last trade per (exchange, symbol), optionally of one exchange or symbol."""
        where, params = ["TRUE"], []
        for column, value in (("exchange", exchange), ("symbol", symbol)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        return self.query(f"SELECT * FROM {self.catalog}.serving.ticker "  # noqa: S608 - fixed names; values bound
                          f"WHERE {' AND '.join(where)} ORDER BY exchange, symbol",
                          params, output=output)

    def spread(self, symbol: str, *, start: datetime | str | None = None,
               end: datetime | str | None = None,
               output: Output = "pandas") -> pd.DataFrame | pa.Table:
        """Per minute, the spread of closes of `symbol` across exchanges, oldest first."""
        where, params = self._window(["symbol = ?"], [symbol], start, end)
        return self.query(f"SELECT * FROM {self.catalog}.serving.spread_1m "  # noqa: S608 - fixed names; values bound
                          f"WHERE {' AND '.join(where)} ORDER BY window_start",
                          params, output=output)

    @staticmethod
    def _window(where: list[str], params: list[Any], start: datetime | str | None,
                end: datetime | str | None) -> tuple[list[str], list[Any]]:
        for op, value in ((">=", _moment(start)), ("<", _moment(end))):
            if value is not None:
                where = [*where, f"window_start {op} ?"]
                params = [*params, value]
        return where, params
