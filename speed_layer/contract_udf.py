"""The trade contract inside Flink SQL: shared.contract as a vectorized Python function.

Flink's own JSON functions read JSON numbers through double, which would break the
contract's literal-text number rules (DECIMAL(18,8) exactly, "9 fractional digits"
judged on the digits as written). So the speed layer does not re-express the rules in
SQL: it calls the one definition, `shared.contract.verdict`, in a pandas (Arrow
batched) UDF, which runs in the Python worker next to the JVM:

    SELECT ok, exchange, ..., detail, <kept columns> FROM (parsed_sql(source))

Measured (bench/speed.py catch-up, BENCHMARKS.md): the row-at-a-time UDF took ~11.6k
messages/s; this one ~17k/s. A JVM fast path for canonical messages (REGEXP, then
SPLIT_INDEX per field; REGEXP_EXTRACT compiles its pattern on every call) was slower
still, ~9k/s: it puts the string work on the source thread, while the Python worker
uses the other core.

The result has the columns of shared.contract.VERDICT_FIELDS, the same the batch
layer's Spark ingest produces, so both engines give the same values for the same
bytes; tests/integration/test_contract_engines.py checks that on every contract case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from shared.contract import VERDICT_FIELDS, verdict

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment

FUNCTION_NAME: Final = "parse_trade"
_NAMES: Final = [name for name, _ in VERDICT_FIELDS]


def register(t_env: TableEnvironment) -> None:
    """Make `parse_trade(value BYTES) -> ROW<VERDICT_FIELDS>` callable (vectorized)."""
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


def parsed_sql(source: str, keep: tuple[str, ...] = ()) -> str:
    """SELECT of the verdict columns (VERDICT_FIELDS order), then the `keep` columns, for
    every row of `source` (a table or subquery with a `value` BYTES column)."""
    kept = "".join(f", `{c}`" for c in keep)
    fields = ", ".join(f"v.`{name}` AS `{name}`" for name in _NAMES)
    return f"SELECT {fields}{kept} FROM (SELECT {FUNCTION_NAME}(`value`) AS v{kept} FROM {source})"
