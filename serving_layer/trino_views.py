"""View declarations (shared.views) compiled for Trino: merging partial rows, serving.

Partial rows (speed partials every ~1 s, batch rows of whole windows) merge with the
monoid of each measure: counts and sums add, MIN/MAX stay MIN/MAX, FIRST/LAST take
the value of the row whose order key is smallest/largest (`min_by`). Merging is closed
(partials in, partials out), so it can be applied to any union of partial rows.
"""

from __future__ import annotations

from shared.views import Agg, Measure, View


def _merge(m: Measure) -> list[str]:
    name = f'"{m.name}"'
    if m.agg in (Agg.COUNT, Agg.SUM):
        return [f"CAST(sum({name}) AS {m.type}) AS {name}"]
    if m.agg in (Agg.MIN, Agg.MAX):
        return [f"{m.agg.value}({name}) AS {name}"]
    key = f'"{m.key_column}"'
    pick, by = ("min_by", "min") if m.agg is Agg.FIRST else ("max_by", "max")
    return [f"{pick}({name}, {key}) AS {name}", f"{by}({key}) AS {key}"]


def merge_sql(view: View, source: str) -> str:
    """SELECT merging the partial rows of `source` into one partial row per key and window."""
    keys = [f'"{k}"' for k in view.keys]
    merged = [expr for m in view.measures for expr in _merge(m)]
    group = [*keys, '"window_start"']
    return (f"SELECT {', '.join([*group, *merged])}\nFROM {source}\n"
            f"GROUP BY {', '.join(group)}")


def served_sql(view: View, source: str) -> str:
    """SELECT of the served columns (View.merged_columns) from merged partial rows."""
    columns = [f'"{k}"' for k in view.keys] + ['"window_start"']
    columns += [f'"{m.name}"' for m in view.measures]
    columns += [f'{d.sql} AS "{d.name}"' for d in view.derived]
    return f"SELECT {', '.join(columns)}\nFROM {source}"
