#!/usr/bin/python3
"""Shared machinery of the swpu-sim sweep scripts (sweep.py, sweep_vf.py).

A sweep is a list of points; a point is a list of --set overrides added to the base ones.
Every point runs the simulator into OUT/points/<id>/ (report.json, layers.csv, the
command line in cmd.txt, the simulator's stdout.txt/stderr.txt). A point is "ok" when the
simulator exits 0 and leaves a readable report.json; otherwise it is "failed" and its error
is the last non-empty line of the simulator's stderr. Failed points stay in the CSV.

Run the scripts with the system interpreter /usr/bin/python3 (Debian numpy/matplotlib).
"""

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SCRIPTS_DIR)
DEFAULT_SIM = os.path.join(REPO_ROOT, "build", "swpu-sim")

# Metric columns of every sweep CSV, in order: (column, section of report.json, key).
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
STATUS_COLUMNS = ["status", "error"]


class UsageError(Exception):
    """Bad command-line input: the scripts exit with status 2."""


def die_usage(prog, msg):
    sys.stderr.write("%s: error: %s\n" % (prog, msg))
    sys.exit(2)


# ----------------------------------------------------------------------------- arguments

def parse_assignment(text, what):
    """'path=value' -> (path, value); raises UsageError."""
    if "=" not in text:
        raise UsageError("%s %r: expected PATH=VALUE" % (what, text))
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise UsageError("%s %r: bad parameter path %r" % (what, text, key))
    return key, value.strip()


def parse_sets(items):
    """List of 'k=v' from --set -> ordered list of (k, v); later duplicates replace earlier."""
    out = {}
    for item in items or []:
        k, v = parse_assignment(item, "--set")
        if v == "":
            raise UsageError("--set %r: empty value" % item)
        out[k] = v
    return list(out.items())


def parse_float_list(text, what):
    vals = []
    for tok in text.split(","):
        tok = tok.strip()
        if not tok:
            raise UsageError("%s %r: empty entry" % (what, text))
        try:
            x = float(tok)
        except ValueError:
            raise UsageError("%s %r: %r is not a number" % (what, text, tok))
        if not math.isfinite(x):
            raise UsageError("%s %r: %r is not finite" % (what, text, tok))
        vals.append(x)
    if not vals:
        raise UsageError("%s: no values" % what)
    return vals


def positive_int(text):
    import argparse
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % n)
    return n


def positive_float(text):
    import argparse
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text)
    if not (x > 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError("must be a positive number, got %r" % text)
    return x


def add_common_arguments(ap):
    """Options shared by both scripts."""
    ap.add_argument("--config", required=True, metavar="FILE", help="chip config (JSON), passed to swpu-sim")
    ap.add_argument("--trace", metavar="DIR", help="sparse training trace directory, passed to swpu-sim")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="config override applied to every point (repeatable)")
    ap.add_argument("--out", required=True, metavar="DIR", help="output directory of the sweep")
    ap.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                    help="simulations run in parallel (default: os.cpu_count() = %(default)s)")
    ap.add_argument("--sim", metavar="PATH",
                    help="simulator binary (default: $SWPU_SIM, else <repo>/build/swpu-sim)")
    ap.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                    help="fail a point whose simulation runs longer than this (default: no limit)")
    ap.add_argument("-q", "--quiet", action="store_true",
                    help="report only failed points and the summary on stderr")


def resolve_common(args):
    """Checks the shared arguments; returns (sim, config, trace, sets). Raises UsageError."""
    sim = args.sim or os.environ.get("SWPU_SIM") or DEFAULT_SIM
    sim = os.path.abspath(sim)
    if not (os.path.isfile(sim) and os.access(sim, os.X_OK)):
        raise UsageError("simulator %s not found or not executable (build it, or give --sim / "
                         "SWPU_SIM)" % sim)
    config = os.path.abspath(args.config)
    if not os.path.isfile(config):
        raise UsageError("config file %s not found" % args.config)
    trace = None
    if args.trace is not None:
        trace = os.path.abspath(args.trace)
        if not os.path.isdir(trace):
            raise UsageError("trace directory %s not found" % args.trace)
    sets = parse_sets(args.set)
    out = os.path.abspath(args.out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError("--out %s exists and is not a directory" % args.out)
    return sim, config, trace, sets


def print_config(sim, config, sets, trace=None):
    """The effective config (after --set) from `swpu-sim --print-config`. Raises UsageError
    with the simulator's message if it refuses the config or the overrides."""
    cmd = [sim, "--config", config]
    if trace:
        cmd += ["--trace", trace]
    for k, v in sets:
        cmd += ["--set", "%s=%s" % (k, v)]
    cmd.append("--print-config")
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError("cannot run %s --print-config: %s" % (sim, e))
    if p.returncode != 0:
        raise UsageError("swpu-sim refused the config or the --set overrides: %s"
                         % last_line(p.stderr.decode("utf-8", "replace"), p.returncode))
    try:
        return json.loads(p.stdout.decode("utf-8"))
    except ValueError as e:
        raise UsageError("swpu-sim --print-config did not print JSON: %s" % e)


def config_has_path(cfg, path):
    node = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return not isinstance(node, dict)


def check_paths_exist(cfg, paths, what):
    for p in paths:
        if not config_has_path(cfg, p):
            raise UsageError("%s %s: unknown config parameter (see `swpu-sim --print-config` and "
                             "docs/config.md)" % (what, p))


def f_max_mhz(chip, v):
    """Alpha-power law f ~ (V - Vth)^a / V anchored at f_max_mhz_at_vnom for v_nom, the same
    formula as ChipConfig::f_max_mhz in src/config.cpp. 0 at or below Vth."""
    vth, a = float(chip["vth"]), float(chip["alpha"])
    if v <= vth:
        return 0.0

    def g(x):
        return (x - vth) ** a / x
    return float(chip["f_max_mhz_at_vnom"]) * g(v) / g(float(chip["v_nom"]))


def fmt_num(x):
    """A number as the shortest text that reads back to the same value (for --set)."""
    return repr(float(x))


# ----------------------------------------------------------------------------- running

def last_line(text, rc=None):
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines:
        return lines[-1]
    if rc is None:
        return "no message"
    if rc < 0:
        try:
            return "killed by signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %d, no message on stderr" % rc


def slug(sets):
    """A short, file-system-safe label of a point's overrides."""
    parts = []
    for k, v in sets:
        parts.append("%s-%s" % (k.split(".")[-1], v))
    s = "_".join(parts)
    s = re.sub(r"[^A-Za-z0-9._+-]", "-", s)
    return s[:80]


class Runner:
    """Runs points in parallel; kills its own children on interrupt."""

    def __init__(self, sim, config, trace, base_sets, out_dir, jobs, timeout=None, quiet=False,
                 prog="sweep"):
        self.sim, self.config, self.trace = sim, config, trace
        self.base_sets = list(base_sets)
        self.out_dir = out_dir
        self.points_dir = os.path.join(out_dir, "points")
        self.jobs, self.timeout, self.quiet, self.prog = jobs, timeout, quiet, prog
        self._procs = set()
        self._lock = threading.Lock()
        self._stopping = False

    def command(self, point_sets, point_dir):
        cmd = [self.sim, "--config", self.config]
        if self.trace:
            cmd += ["--trace", self.trace]
        merged = dict(self.base_sets)
        merged.update(point_sets)
        for k, v in merged.items():
            cmd += ["--set", "%s=%s" % (k, v)]
        cmd += ["--out", point_dir, "-q"]
        return cmd

    def run_one(self, pid, point_sets):
        point_dir = os.path.join(self.points_dir, pid)
        if os.path.isdir(point_dir):
            shutil.rmtree(point_dir)  # never read a stale report of an earlier sweep
        os.makedirs(point_dir)
        cmd = self.command(point_sets, point_dir)
        with open(os.path.join(point_dir, "cmd.txt"), "w") as f:
            f.write(" ".join(shlex_quote(c) for c in cmd) + "\n")
        t0 = time.monotonic()
        res = {"point": pid, "status": "failed", "error": "", "report": None, "seconds": 0.0}
        with open(os.path.join(point_dir, "stdout.txt"), "wb") as fo, \
                open(os.path.join(point_dir, "stderr.txt"), "wb") as fe:
            with self._lock:
                if self._stopping:
                    res["error"] = "not run: sweep interrupted"
                    return res
                try:
                    proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
                except OSError as e:
                    res["error"] = "cannot start simulator: %s" % e
                    return res
                self._procs.add(proc)
            try:
                rc = proc.wait(timeout=self.timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
                timed_out = True
            finally:
                with self._lock:
                    self._procs.discard(proc)
        res["seconds"] = time.monotonic() - t0
        with open(os.path.join(point_dir, "stderr.txt"), "rb") as f:
            err = f.read().decode("utf-8", "replace")
        if timed_out:
            res["error"] = "timeout after %g s" % self.timeout
        elif rc != 0:
            res["error"] = last_line(err, rc)
        else:
            rpath = os.path.join(point_dir, "report.json")
            try:
                with open(rpath) as f:
                    res["report"] = json.load(f)
                res["status"] = "ok"
            except (OSError, ValueError) as e:
                res["error"] = "exit status 0 but no readable report.json: %s" % e
        return res

    def run_all(self, points):
        """points: list of (id, [(k, v), ...]). Returns results in the order of points."""
        os.makedirs(self.points_dir, exist_ok=True)

        def on_term(signum, frame):  # stop like on Ctrl-C: kill our simulators, then exit
            raise KeyboardInterrupt
        try:
            signal.signal(signal.SIGTERM, on_term)
        except ValueError:  # not in the main thread
            pass
        results = [None] * len(points)
        n = len(points)
        done = 0
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.jobs, n)))
        try:
            futs = {pool.submit(self.run_one, pid, ps): i for i, (pid, ps) in enumerate(points)}
            for fut in as_completed(futs):
                i = futs[fut]
                pid, ps = points[i]
                try:
                    r = fut.result()
                except Exception as e:  # a bug here must not lose the point
                    r = {"point": pid, "status": "failed", "error": "sweep error: %r" % e,
                         "report": None, "seconds": 0.0}
                results[i] = r
                done += 1
                label = " ".join("%s=%s" % kv for kv in ps)
                if r["status"] == "ok":
                    if not self.quiet:
                        sys.stderr.write("[%d/%d] ok      %s  (%.1f s)\n" % (done, n, label, r["seconds"]))
                else:
                    sys.stderr.write("[%d/%d] FAILED  %s: %s\n" % (done, n, label, r["error"]))
                sys.stderr.flush()
        except KeyboardInterrupt:
            with self._lock:
                self._stopping = True
                for p in list(self._procs):
                    try:
                        p.kill()
                    except OSError:
                        pass
            pool.shutdown(wait=True)
            sys.stderr.write("%s: interrupted\n" % self.prog)
            sys.exit(130)
        pool.shutdown(wait=True)
        return results


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


# ----------------------------------------------------------------------------- rows / CSV

def metric_row(report):
    """The metric and energy_<component>_uj columns of one ok point's report."""
    row = {}
    for col, section, key in METRICS:
        src = report if section is None else report.get(section, {})
        row[col] = src.get(key, "")
    for comp, uj in (report.get("energy", {}).get("per_component_uj") or {}).items():
        row["energy_%s_uj" % comp] = uj
    return row


def energy_columns(rows):
    """energy_<component>_uj columns seen in the rows, in order of first appearance."""
    seen = []
    for r in rows:
        for k in r:
            if k.startswith("energy_") and k.endswith("_uj") and k not in seen:
                seen.append(k)
    return seen


def fmt_cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def make_public(tmp_path):
    """mkstemp creates 0600 files; give the final file the usual mode (0666 & ~umask)."""
    os.chmod(tmp_path, 0o666 & ~_umask())


def write_atomic(path, write, suffix=".tmp"):
    """Calls write(tmp) on a temporary file beside `path`, then renames it into place: the file
    appears complete or not at all."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=d)
    os.close(fd)
    try:
        write(tmp)
        make_public(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_csv_atomic(path, columns, rows):
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            for r in rows:
                w.writerow([fmt_cell(r.get(c, "")) for c in columns])
    write_atomic(path, write)


def summarize(prog, results, csv_path):
    failed = [r for r in results if r["status"] != "ok"]
    sys.stderr.write("%s: %d points, %d ok, %d failed; wrote %s\n"
                     % (prog, len(results), len(results) - len(failed), len(failed), csv_path))
    for r in failed:
        sys.stderr.write("%s: failed point %s: %s\n" % (prog, r["point"], r["error"]))
    return 1 if failed else 0
