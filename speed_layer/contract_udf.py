"""The trade contract inside Flink SQL: a JVM fast path, and shared.contract in Python.

Flink's own JSON functions read JSON numbers through double, which would break the
contract's literal-text number rules (DECIMAL(18,8) exactly, "9 fractional digits"
judged on the digits as written). So the speed layer does not re-express the rules in
SQL. A canonical message (shared.contract.CANONICAL_RE: the fields in their documented
order, decimals as strings; what the generator and the exchange adapters write) is
accepted by `canonical_trade`, a JVM function (speed_layer/jvm, compiled by `make
setup`) that matches the same pattern, passed to it from shared.contract as a literal;
every other message gets the verdict of the one definition, `shared.contract.verdict`,
in a pandas (Arrow batched) UDF in the Python worker:

    SELECT ok, exchange, ..., detail, <kept columns> FROM (parsed_sql(source))

The stream splits in two, and only the messages the fast path did not settle (a few
in a hundred) cross to Python. Measured (bench/speed.py catch-up, BENCHMARKS.md): every
message through Python 22-23k messages/s; every message to the Python worker with the
settled ones as nulls (one ordered stream) 26k/s; split 34k/s. (An earlier JVM fast path
in Flink SQL's own string functions, REGEXP then SPLIT_INDEX per field, ran at ~9k/s.)

What the split costs: the Python branch runs a bundle behind (python.fn-execution.
bundle.time, 100 ms), so a message it judges may reach the dedupe after a later
message of the fast branch. The dedupe keeps the first to arrive; only two copies of
one trade (exchange, symbol, trade_id) that differ in their fields, one canonical and
one not, sent within about a bundle of each other, can then be kept the other way round
than the batch layer keeps them (first in Kafka order); the batch layer's row replaces
the speed layer's when its boundary passes.

The result has the columns of shared.contract.VERDICT_FIELDS, the same the batch
layer's Spark ingest produces, so both engines give the same values for the same
bytes; tests/integration/test_contract_engines.py checks that on every contract case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from shared.contract import CANONICAL_RE, MAX_TS_MS, VERDICT_FIELDS, verdict

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment

FUNCTION_NAME: Final = "parse_trade"
FAST_FUNCTION: Final = "canonical_trade"
FAST_CLASS: Final = "concord.speed.CanonicalTrade"
_NAMES: Final = [name for name, _ in VERDICT_FIELDS]


def register(t_env: TableEnvironment) -> None:
    """Make `parse_trade(value BYTES) -> ROW<VERDICT_FIELDS>` (vectorized Python) and
    `canonical_trade(value, pattern, max_ts)` (the JVM fast path, NULL unless canonical
    and valid) callable."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    types = {
        "BOOLEAN": DataTypes.BOOLEAN(),
        "STRING": DataTypes.STRING(),
        "DECIMAL(18,8)": DataTypes.DECIMAL(18, 8),
        "BIGINT": DataTypes.BIGINT(),
    }
    row_type = DataTypes.ROW([DataTypes.FIELD(name, types[sql]) for name, sql in VERDICT_FIELDS])

    def parse(values: Any) -> Any:  # pandas Series in, DataFrame out
        import pandas as pd

        rows = [verdict(value) for value in values]
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(_NAMES)
        return pd.DataFrame({name: pd.Series(col, dtype=object)
                             for name, col in zip(_NAMES, columns, strict=True)})

    function = udf(parse, input_types=[DataTypes.BYTES()],
                   result_type=row_type, func_type="pandas", deterministic=True)
    t_env.create_temporary_system_function(FUNCTION_NAME, function)
    t_env.create_java_temporary_system_function(FAST_FUNCTION, FAST_CLASS)


def parsed_sql(source: str, keep: tuple[str, ...] = ()) -> str:
    """SELECT of the verdict columns (VERDICT_FIELDS order), then the `keep` columns, for
    every row of `source` (a table or subquery with a `value` BYTES column): the fast
    path's verdict where it has one, the Python function's for the other rows."""
    kept = "".join(f", `{c}`" for c in keep)
    pattern = CANONICAL_RE.replace("'", "''")
    fast = f"{FAST_FUNCTION}(`value`, '{pattern}', CAST({MAX_TS_MS} AS BIGINT))"
    fields = ", ".join(f"v.`{name}` AS `{name}`" for name in _NAMES)
    marked = f"(SELECT {fast} AS f, `value`{kept} FROM {source})"
    return (f"SELECT {fields}{kept} FROM ("
            f"SELECT f AS v{kept} FROM {marked} WHERE f IS NOT NULL UNION ALL "
            f"SELECT {FUNCTION_NAME}(`value`) AS v{kept} FROM {marked} WHERE f IS NULL)")
