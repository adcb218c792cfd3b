"""The one reader of a swpu-sim run's report.json."""

import json
import os

# Summary columns of every results table, in order: (column, section of report.json, key).
METRICS = [
    ("cycles", "totals", "cycles"),
    ("time_us", "totals", "time_us"),
    ("utilization", "totals", "utilization"),
    ("valid_macs", "totals", "valid_macs"),
    ("dense_macs", "totals", "dense_macs"),
    ("dram_read_bytes", "totals", "dram_read_bytes"),
    ("dram_write_bytes", "totals", "dram_write_bytes"),
    ("clock_mhz", None, "clock_mhz"),
    ("f_max_mhz", None, "f_max_mhz"),
    ("chip_uj", "energy", "chip_uj"),
    ("dram_uj", "energy", "dram_uj"),
    ("total_uj", "energy", "total_uj"),
    ("power_mw", "energy", "power_mw"),
    ("system_power_mw", "energy", "system_power_mw"),
    ("effective_tflops", "energy", "effective_tflops"),
    ("real_tflops", "energy", "real_tflops"),
    ("effective_tflops_per_w", "energy", "effective_tflops_per_w"),
    ("real_tflops_per_w", "energy", "real_tflops_per_w"),
    ("system_effective_tflops_per_w", "energy", "system_effective_tflops_per_w"),
]
METRIC_COLUMNS = [m[0] for m in METRICS]
# Engine recorded when the effective config has no simulation.engine field.
DEFAULT_ENGINE = "fast"


class ReportError(Exception):
    pass


class Report:
    """A run's report.json: Report.load(dir_or_file) or Report(dict)."""

    def __init__(self, data, path=None):
        if not isinstance(data, dict) or "totals" not in data:
            raise ReportError("%s: not a swpu-sim report (no 'totals')" % (path or "report"))
        self.data = data
        self.path = path

    @classmethod
    def load(cls, path):
        if os.path.isdir(path):
            path = os.path.join(path, "report.json")
        try:
            with open(path) as f:
                return cls(json.load(f), path)
        except (OSError, ValueError) as e:
            raise ReportError("%s: cannot read the report: %s" % (path, e))

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    # -- the effective config and what it ran
    @property
    def config(self):
        return self.data.get("config", {})

    @property
    def engine(self):
        return (self.config.get("simulation") or {}).get("engine") or DEFAULT_ENGINE

    @property
    def workload(self):
        return self.data.get("workload", {})

    @property
    def iterations(self):
        return max(1, int(self.workload.get("iterations", 1) or 1))

    # -- figures
    @property
    def totals(self):
        return self.data["totals"]

    @property
    def energy(self):
        return self.data.get("energy", {})

    @property
    def cycles(self):
        return int(self.totals["cycles"])

    @property
    def clock_mhz(self):
        return float(self.data["clock_mhz"])

    @property
    def f_max_mhz(self):
        return float(self.data["f_max_mhz"])

    @property
    def pricing(self):
        """The priced action counts (component, action, class, count, pJ) and the clock; None
        for reports of simulators older than the 'pricing' block."""
        return self.data.get("pricing")

    def per_component_uj(self):
        return dict(self.energy.get("per_component_uj") or {})

    def metric_row(self):
        """Summary columns plus energy_<component>_uj."""
        row = {}
        for col, section, key in METRICS:
            src = self.data if section is None else self.data.get(section, {})
            row[col] = src.get(key, "")
        for comp, uj in self.per_component_uj().items():
            row["energy_%s_uj" % comp] = uj
        return row

    def action_counts(self):
        """{'component.action': count} as priced (clock tree at the run's wall cycles)."""
        p = self.pricing or {}
        return {"%s.%s" % (a["component"], a["action"]): int(a["count"])
                for a in p.get("actions", []) if "count" in a}


def energy_columns(rows):
    """energy_<component>_uj columns seen in the rows, in order of first appearance."""
    seen = []
    for r in rows:
        for k in r:
            if k.startswith("energy_") and k.endswith("_uj") and k not in seen:
                seen.append(k)
    return seen
