"""Resumable sweeps on Dask: one simulator subprocess per task, small records back, one tidy
results table with provenance per row.

A point is a list of --set overrides added to the sweep's base ones. Its key is a hash of
everything that decides its result: the simulator binary, the config file, the trace, the
overrides and the extra simulator arguments (e.g. --engine). It runs into OUT/points/<key>/
(the simulator's report.json etc., cmd.txt, stdout.txt, stderr.txt) and ends with record.json,
written atomically: the point's small result record (status, summary figures, action counts,
priced clock, provenance). A rerun of the same sweep loads the records of finished (ok) points and
runs only the others, so a killed sweep resumes where it stopped; failed points run again.

OUT/results.csv (atomic, rewritten as points finish) has one row per point of the sweep:
point, key, the swept parameters, status, error, the summary figures, energy_<component>_uj,
count_<component>.<action>, and the provenance git_commit, config_hash (of the effective
config), trace_hash, engine, sim_sha256, seconds, worker; git_commit is the repository's state
(`git describe --dirty`) when the point ran.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from . import files, simulator
from .report import METRIC_COLUMNS, Report, ReportError, energy_columns

RECORD = "record.json"
PROVENANCE_COLUMNS = ["git_commit", "config_hash", "trace_hash", "engine", "sim_sha256", "seconds",
                      "worker"]


class Interrupted(Exception):
    pass


# ----------------------------------------------------------------------------- the task

def run_task(task):
    """Runs one point in a worker: the simulator as a subprocess into task['dir'], then writes and
    returns the point's record. Never raises for a failing simulation (status 'failed')."""
    d = task["dir"]
    if os.path.isdir(d):
        shutil.rmtree(d)  # a half-finished earlier attempt: never read its files
    os.makedirs(d)
    cmd = task["cmd"] + ["--out", d, "-q"]
    files.write_text_atomic(os.path.join(d, "cmd.txt"), simulator.quote(cmd) + "\n")
    rec = {"key": task["key"], "point": task["point"], "cmd": task["cmd"], "status": "failed",
           "error": "", "git_commit": task.get("git_commit", ""),
           "seconds": 0.0, "worker": socket.gethostname() + ":%d" % os.getpid()}
    t0 = time.monotonic()
    env = dict(os.environ)
    env.update(simulator.SIM_ENV)
    with open(os.path.join(d, "stdout.txt"), "wb") as fo, \
            open(os.path.join(d, "stderr.txt"), "wb") as fe:
        try:
            proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env)
        except OSError as e:
            rec["error"] = "cannot start simulator: %s" % e
            return rec
        try:
            rc = proc.wait(timeout=task.get("timeout"))
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            timed_out = True
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    rec["seconds"] = time.monotonic() - t0
    if timed_out:
        rec["error"] = "timeout after %g s" % task["timeout"]
    elif rc != 0:
        with open(os.path.join(d, "stderr.txt"), "rb") as f:
            rec["error"] = simulator.last_line(f.read().decode("utf-8", "replace"), rc)
    else:
        try:
            rep = Report.load(d)
            rec.update(record_of(rep))
            rec["status"] = "ok"
        except (ReportError, KeyError, ValueError) as e:
            rec["error"] = "exit status 0 but no readable report.json: %s" % e
    files.write_json_atomic(os.path.join(d, RECORD), rec)
    return rec


def record_of(rep):
    """The small part of a report a sweep keeps: summary figures, energy per component, the
    priced action counts, the effective config and its hash, the engine."""
    return {"metrics": rep.metric_row(), "pricing": rep.pricing, "config": rep.config,
            "config_hash": simulator.json_sha256(rep.config)[:16], "engine": rep.engine,
            "iterations": rep.iterations}


# ----------------------------------------------------------------------------- the sweep

class Sweep:
    """A sweep: the base run (sim, config, trace, base sets, extra args) and where it writes."""

    def __init__(self, sim, config, trace, base_sets, out, extra_args=(), timeout=None,
                 prog="sweep", quiet=False, dir_by_point=False):
        self.sim, self.config, self.trace = sim, config, trace
        self.base_sets = list(base_sets)
        self.out = os.path.abspath(out)
        self.extra_args = list(extra_args)
        self.timeout, self.prog, self.quiet = timeout, prog, quiet
        self.sim_sha = simulator.file_sha256(sim)
        self.config_sha = simulator.file_sha256(config)
        self.trace_hash = simulator.tree_sha256(trace)[:16] if trace else "synthetic"
        self.git_commit = simulator.git_commit()
        # points/<point id>/ (readable names, for sweep.py) or points/<key>/ (the default)
        self.dir_by_point = dir_by_point

    def merged_sets(self, point_sets):
        m = dict(self.base_sets)
        m.update(point_sets)
        return list(m.items())

    def key(self, point_sets):
        return simulator.json_sha256({
            "sim": self.sim_sha, "config": self.config_sha, "trace": self.trace_hash,
            "sets": sorted(self.merged_sets(point_sets)), "extra": self.extra_args})[:20]

    def task(self, point_id, point_sets):
        k = self.key(point_sets)
        d = os.path.join(self.out, "points", point_id if self.dir_by_point else k)
        return {"key": k, "point": point_id, "dir": d,
                "cmd": simulator.command(self.sim, self.config, self.merged_sets(point_sets),
                                         self.trace, extra=self.extra_args),
                "timeout": self.timeout, "git_commit": self.git_commit}

    def finished(self, task):
        """The record of an ok point of an earlier run of this sweep, else None."""
        try:
            with open(os.path.join(task["dir"], RECORD)) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            return None
        if rec.get("key") != task["key"] or rec.get("status") != "ok":
            return None
        rec["point"] = task["point"]
        return rec

    def row(self, task, rec, params):
        row = {"point": task["point"], "key": task["key"]}
        row.update(params)
        row["status"] = rec.get("status", "failed")
        row["error"] = rec.get("error", "")
        row.update(rec.get("metrics") or {})
        row["iterations"] = rec.get("iterations", "")
        p = rec.get("pricing") or {}
        for a in p.get("actions", []):
            if "count" in a:
                row["count_%s.%s" % (a["component"], a["action"])] = a["count"]
        row["git_commit"] = rec.get("git_commit") or self.git_commit  # where the point ran
        row["config_hash"] = rec.get("config_hash", "")
        row["trace_hash"] = self.trace_hash
        row["engine"] = rec.get("engine", "")
        row["sim_sha256"] = self.sim_sha[:16]
        row["seconds"] = rec.get("seconds", "")
        row["worker"] = rec.get("worker", "")
        return row

    def write_table(self, path, param_columns, tasks, records, params, row_hook=None,
                    extra_columns=()):
        rows = [self.row(t, records[t["key"]], params[t["key"]])
                for t in tasks if t["key"] in records]
        if row_hook:
            for r in rows:
                row_hook(r)
        counts = []
        for r in rows:
            for k in r:
                if k.startswith("count_") and k not in counts:
                    counts.append(k)
        columns = (["point", "key"] + list(param_columns) + ["status", "error"]
                   + METRIC_COLUMNS + ["iterations"] + list(extra_columns) + energy_columns(rows)
                   + counts + PROVENANCE_COLUMNS)
        files.write_csv_atomic(path, columns, rows)
        return rows

    def run(self, points, cluster, param_columns, table="results.csv", on_progress=None,
            row_hook=None, extra_columns=()):
        """points: [(point_id, [(k, v), ...], {column: value})]. Runs the unfinished ones on the
        cluster ('local', N) / ('tcp', address); writes OUT/<table>. Returns (rows, stats)."""
        os.makedirs(os.path.join(self.out, "points"), exist_ok=True)
        tasks, params, records = [], {}, {}
        for pid, ps, cols in points:
            t = self.task(pid, ps)
            if t["key"] in params:
                raise ValueError("point %s repeats an earlier point" % pid)
            tasks.append(t)
            params[t["key"]] = cols
            rec = self.finished(t)
            if rec is not None:
                records[t["key"]] = rec
        todo = [t for t in tasks if t["key"] not in records]
        table_path = os.path.join(self.out, table)
        stats = {"points": len(tasks), "skipped": len(tasks) - len(todo), "ran": 0,
                 "failed": 0, "seconds": 0.0}
        sys.stderr.write("%s: %d points, %d already finished (skipped), %d to run on %s\n"
                         % (self.prog, len(tasks), stats["skipped"], len(todo), describe(cluster)))
        sys.stderr.flush()
        t0 = time.monotonic()
        labels = {self.key(ps): " ".join("%s=%s" % kv for kv in ps) or pid
                  for pid, ps, _ in points}
        last_write = [time.monotonic()]

        def on_record(rec):
            records[rec["key"]] = rec
            stats["ran"] += 1
            label = labels.get(rec["key"], rec["point"])
            if rec["status"] == "ok":
                if not self.quiet:
                    sys.stderr.write("[%d/%d] ok      %s  (%.1f s)\n"
                                     % (stats["ran"], len(todo), label, rec["seconds"]))
            else:
                stats["failed"] += 1
                sys.stderr.write("[%d/%d] FAILED  %s: %s\n" % (stats["ran"], len(todo), label,
                                                               rec["error"]))
            sys.stderr.flush()
            if on_progress:
                on_progress(stats)
            if time.monotonic() - last_write[0] > 10:  # a killed sweep still leaves a table
                self.write_table(table_path, param_columns, tasks, records, params, row_hook,
                                         extra_columns)
                last_write[0] = time.monotonic()

        if todo:
            run_on_dask(todo, cluster, self.prog, on_record)
        stats["seconds"] = time.monotonic() - t0
        rows = self.write_table(table_path, param_columns, tasks, records, params, row_hook,
                                         extra_columns)
        stats["failed_total"] = sum(1 for r in rows if r["status"] != "ok")
        sys.stderr.write("%s: %d points (%d skipped as finished, %d ran in %.1f s, %d failed in "
                         "all); wrote %s\n" % (self.prog, stats["points"], stats["skipped"],
                                              stats["ran"], stats["seconds"],
                                              stats["failed_total"], table_path))
        return rows, stats


# ----------------------------------------------------------------------------- Dask

def describe(cluster):
    kind, arg = cluster
    if kind == "local":
        return "a local Dask cluster of %d worker processes" % (arg or os.cpu_count() or 1)
    return "the Dask scheduler at %s" % arg


def open_client(cluster):
    """A dask.distributed Client (and the LocalCluster it owns, or None)."""
    import dask
    from dask.distributed import Client, LocalCluster
    import cloudpickle
    # Ship this package's code by value: a dask-worker started elsewhere needs no PYTHONPATH.
    # (Dask looks the task function's own module up in cloudpickle's registry, so every
    # submodule is registered, not only the package.)
    for name, mod in list(sys.modules.items()):
        if mod is not None and (name == __package__ or name.startswith(__package__ + ".")):
            try:
                cloudpickle.register_pickle_by_value(mod)
            except (AttributeError, ValueError):
                pass
    dask.config.set({"distributed.worker.daemon": False})
    kind, arg = cluster
    if kind == "local":
        lc = LocalCluster(n_workers=arg or os.cpu_count() or 1, threads_per_worker=1,
                          processes=True, host="127.0.0.1", dashboard_address=None,
                          silence_logs=40)
        return Client(lc), lc
    return Client(arg, timeout=30), None


def run_on_dask(tasks, cluster, prog, on_record):
    """Runs the tasks on the cluster, calling on_record(record) as each finishes. SIGTERM or
    Ctrl-C cancels the rest, closes the cluster and exits 130 (finished points keep their
    records, so a rerun resumes)."""
    from dask.distributed import as_completed

    def on_term(signum, frame):
        raise KeyboardInterrupt
    old = None
    try:
        old = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        pass
    client = lc = None
    futures = []
    try:
        client, lc = open_client(cluster)
        futures = client.map(run_task, tasks, key=["swpu-%s" % t["key"] for t in tasks],
                             pure=False, retries=0)
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in as_completed(futures):
            if fut.status == "error":
                t = tasks[index[fut.key]]
                on_record({"key": t["key"], "point": t["point"], "status": "failed",
                           "error": "worker error: %s" % fut.exception(), "seconds": 0.0})
            else:
                on_record(fut.result())
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted; finished points are kept, a rerun resumes\n" % prog)
        _close(client, lc, futures)
        sys.exit(130)
    finally:
        if old is not None:
            try:
                signal.signal(signal.SIGTERM, old)
            except ValueError:
                pass
    _close(client, lc, futures)


def _close(client, lc, futures):
    try:
        if client is not None:
            if futures:
                client.cancel(futures)
            client.close()
        if lc is not None:
            lc.close()
    except Exception:  # closing on the way out must not hide the real outcome
        pass
