"""Re-pricing saved action counts: when only the energy table or the voltage changes, the energy of
a run is the same counts times the new energy per action, so no re-simulation is needed.

The counts and the clock come from the run's report ('pricing' block: count and calibrated pJ of
every (component, action), wall cycles, clock). The new energy per action, leakage power and clock
come from the simulator itself (`swpu-sim ... --print-pricing` for the new config), so this module
holds no copy of the energy formulas, only the sum the simulator does (src/energy.cpp:
EnergyModel::of and annotate), in the same order.

A change re-prices only when every changed config field is an energy-table or supply field
(REPRICEABLE) and the clock stays the same. DRAM timing is in ns, so a clock change changes the
cycles: then the point must be re-simulated, and the caller says so.
"""

from . import simulator

# Fields that change energy per action, leakage or the clock, never the work done per cycle.
REPRICEABLE_PREFIXES = ("energy.",)
REPRICEABLE_FIELDS = {"chip.voltage", "chip.frequency_mhz", "chip.v_min", "chip.v_max",
                      "chip.v_nom", "chip.vth", "chip.alpha", "chip.f_max_mhz_at_vnom"}


def flatten(cfg, prefix=""):
    out = {}
    for k, v in (cfg or {}).items():
        if k.startswith("_"):
            continue
        p = prefix + k
        if isinstance(v, dict):
            out.update(flatten(v, p + "."))
        else:
            out[p] = v
    return out


def changed_fields(old_cfg, new_cfg):
    a, b = flatten(old_cfg), flatten(new_cfg)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def decide(old_cfg, new_cfg, old_pricing, new_pricing):
    """(True, '') if the new config can be priced from the old counts, else (False, reason)."""
    if not old_pricing or "cycles" not in old_pricing:
        return False, "the saved report has no priced action counts"
    other = [f for f in changed_fields(old_cfg, new_cfg)
             if f not in REPRICEABLE_FIELDS and not f.startswith(REPRICEABLE_PREFIXES)]
    if other:
        return False, "changes more than the energy table and the supply: %s" % ", ".join(other)
    if float(new_pricing["clock_mhz"]) != float(old_pricing["clock_mhz"]):
        return False, ("the clock changes from %.6g to %.6g MHz, and DRAM timing is in ns, so the "
                       "cycles change" % (old_pricing["clock_mhz"], new_pricing["clock_mhz"]))
    return True, ""


def price(old_pricing, new_pricing, dense_macs, valid_macs):
    """The report's energy figures for the saved counts at the new prices (same sums and order as
    the simulator: per component in action order, then leakage plus the components in name
    order)."""
    pj = {(a["component"], a["action"]): float(a["pj"]) for a in new_pricing["actions"]}
    comp, dram_pj = {}, 0.0
    classes = {(a["component"], a["action"]): a["class"] for a in new_pricing["actions"]}
    for a in old_pricing["actions"]:
        key = (a["component"], a["action"])
        if key not in pj:
            raise ValueError("action %s.%s has no price in the new table" % key)
        e = float(int(a["count"])) * pj[key]
        if classes[key] == "dram":
            dram_pj += e
        else:
            comp[a["component"]] = comp.get(a["component"], 0.0) + e
    cycles = int(old_pricing["cycles"])
    seconds = cycles / (float(new_pricing["clock_mhz"]) * 1e6)
    leak_pj = float(new_pricing["leakage_mw"]) * 1e-3 * seconds * 1e12
    chip_pj = leak_pj
    for k in sorted(comp):
        chip_pj += comp[k]
    eff, real = 2.0 * float(dense_macs), 2.0 * float(valid_macs)
    per = {k: v * 1e-6 for k, v in sorted(comp.items())}
    per["leakage"] = leak_pj * 1e-6
    return {
        "chip_uj": chip_pj * 1e-6,
        "dram_uj": dram_pj * 1e-6,
        "total_uj": (chip_pj + dram_pj) * 1e-6,
        "power_mw": chip_pj * 1e-12 / seconds * 1e3 if seconds > 0 else 0.0,
        "system_power_mw": (chip_pj + dram_pj) * 1e-12 / seconds * 1e3 if seconds > 0 else 0.0,
        "effective_tflops_per_w": eff / chip_pj if chip_pj > 0 else 0.0,
        "real_tflops_per_w": real / chip_pj if chip_pj > 0 else 0.0,
        "system_effective_tflops_per_w": eff / (chip_pj + dram_pj) if chip_pj + dram_pj > 0 else 0.0,
        "per_component_uj": per,
    }


def reprice_record(sim, cmd, record, new_sets):
    """Re-prices one sweep record (record.json of swpu.sweep) for the overrides `new_sets`, added
    after the point's own command line `cmd` (the simulator's argument list without --out).
    Returns (metrics, None) when re-priced, (None, reason) when the point must be re-simulated.
    Raises simulator.SimulatorError if the simulator refuses the new overrides."""
    args = list(cmd[1:])
    for k, v in new_sets:
        args += ["--set", "%s=%s" % (k, v)]
    new_cfg = simulator.ask(sim, args, "--print-config")
    new_pricing = simulator.ask(sim, args, "--print-pricing")
    ok, reason = decide(record.get("config"), new_cfg, record.get("pricing"), new_pricing)
    if not ok:
        return None, reason
    m = record["metrics"]
    out = price(record["pricing"], new_pricing, m["dense_macs"], m["valid_macs"])
    metrics = dict(m)
    for k in list(metrics):
        if k.startswith("energy_") and k.endswith("_uj"):
            del metrics[k]
    for k, v in out.items():
        if k != "per_component_uj":
            metrics[k] = v
    for comp, uj in out["per_component_uj"].items():
        metrics["energy_%s_uj" % comp] = uj
    metrics["f_max_mhz"] = float(new_pricing["f_max_mhz"])
    return metrics, None
