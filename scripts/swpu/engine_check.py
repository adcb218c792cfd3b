"""The engines' agreement on a sweep's own points.

A sweep runs on one engine (swpu-sim's simulation.engine, or --engine). `check(...)` reruns the
first K ok points on the other engine and reports the relative cycle difference per point, into
OUT/engine_check.csv and one summary line: the measured agreement of the fast engine with the
cycle-accurate one on exactly the configs the sweep explored (docs/architecture.md,
"Cross-validation of the fast engine", for the random corpus).
"""

import os

from . import runner
from .files import write_csv_atomic

COLUMNS = ["point", "engine", "cycles", "other_engine", "other_cycles", "difference_pct", "status"]


def other_engine(engine):
    return "fast" if engine == "cycle" else "cycle"


def check(sim, config, trace, sets, out_dir, points, results, engine, k, jobs, timeout, prog):
    """points: [(pid, [(path, value)])], results: the sweep's runner results in the same order.
    Returns (rows, summary line)."""
    chosen = [(p, r) for p, r in zip(points, results) if r["status"] == "ok"][:k]
    if not chosen:
        return [], "%s: engine check: no finished point to check" % prog
    other = other_engine(engine)
    run = runner.Runner(sim, config, trace, sets, os.path.join(out_dir, "engine_check"), jobs, timeout,
                        True, prog, extra_args=["--engine", other])
    again = run.run_all([p for p, _ in chosen])
    rows, worst = [], None
    for ((pid, _), r0), r1 in zip(chosen, again):
        row = {"point": pid, "engine": engine, "cycles": r0["report"].cycles, "other_engine": other}
        if r1["status"] == "ok":
            c0, c1 = r0["report"].cycles, r1["report"].cycles
            d = 100.0 * (c0 / c1 - 1.0) if engine == "fast" else 100.0 * (c1 / c0 - 1.0)
            row.update({"other_cycles": c1, "difference_pct": "%.4f" % d, "status": "ok"})
            worst = abs(d) if worst is None else max(worst, abs(d))
        else:
            row.update({"other_cycles": "", "difference_pct": "", "status": "failed: " + r1["error"]})
        rows.append(row)
    path = os.path.join(out_dir, "engine_check.csv")
    write_csv_atomic(path, COLUMNS, rows)
    ok = sum(1 for r in rows if r["status"] == "ok")
    if worst is None:
        line = ("%s: engine check: the %s engine could not run these points (%s); see %s"
                % (prog, other, rows[0]["status"], path))
    else:
        line = ("%s: engine check: %d of the sweep's points rerun on the %s engine; the fast engine's "
                "cycles differ from the cycle engine's by at most %.3f%% (%s)" % (prog, ok, other, worst, path))
    return rows, line
