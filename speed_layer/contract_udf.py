"""The trade contract inside Flink SQL: shared.contract as a Python scalar function.

Flink's own JSON functions read JSON numbers through double, which would break the
contract's literal-text number rules (DECIMAL(18,8) exactly, "9 fractional digits"
judged on the digits as written). So the speed layer does not re-express the rules in
SQL: it calls the one definition, `shared.contract.verdict`, as a UDF:

    SELECT v.ok, v.exchange, ..., v.reason FROM (SELECT parse_trade(`value`) AS v FROM src)

The result row has the columns of shared.contract.VERDICT_FIELDS, the same the batch
layer's Spark ingest produces, so both engines give the same values for the same
bytes; tests/integration/test_contract_engines.py checks that on every contract case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from shared.contract import VERDICT_FIELDS, verdict

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment

FUNCTION_NAME: Final = "parse_trade"


def register(t_env: TableEnvironment) -> None:
    """Make `parse_trade(BYTES) -> ROW<VERDICT_FIELDS>` callable in this environment's SQL."""
    from pyflink.table import DataTypes
    from pyflink.table.types import Row
    from pyflink.table.udf import udf

    types = {
        "BOOLEAN": DataTypes.BOOLEAN(),
        "STRING": DataTypes.STRING(),
        "DECIMAL(18,8)": DataTypes.DECIMAL(18, 8),
        "BIGINT": DataTypes.BIGINT(),
    }
    row_type = DataTypes.ROW([DataTypes.FIELD(name, types[sql]) for name, sql in VERDICT_FIELDS])

    def parse(value: bytes | None) -> Row:
        return Row(*verdict(value))

    function = udf(parse, input_types=[DataTypes.BYTES()], result_type=row_type,
                   deterministic=True)
    t_env.create_temporary_system_function(FUNCTION_NAME, function)
