"""The local runner: points in parallel threads, one simulator subprocess each, each into
OUT/points/<id>/ (report.json, layers.csv, cmd.txt, stdout.txt, stderr.txt). A point is "ok" when
the simulator exits 0 and leaves a readable report.json; otherwise it is "failed" and its error is
the last non-empty line of the simulator's stderr. Ctrl-C or SIGTERM kills the running simulations
and exits 130. Resumable sweeps on Dask are in swpu.sweep."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from . import simulator
from .report import Report, ReportError


class Runner:
    """Runs points in parallel; kills its own children on interrupt."""

    def __init__(self, sim, config, trace, base_sets, out_dir, jobs, timeout=None, quiet=False,
                 prog="sweep", extra_args=()):
        self.sim, self.config, self.trace = sim, config, trace
        self.base_sets = list(base_sets)
        self.out_dir = out_dir
        self.points_dir = os.path.join(out_dir, "points")
        self.jobs, self.timeout, self.quiet, self.prog = jobs, timeout, quiet, prog
        self.extra_args = list(extra_args)
        self._procs = set()
        self._lock = threading.Lock()
        self._stopping = False

    def command(self, point_sets, point_dir):
        merged = dict(self.base_sets)
        merged.update(point_sets)
        return simulator.command(self.sim, self.config, list(merged.items()), self.trace,
                                 out=point_dir, extra=self.extra_args)

    def run_one(self, pid, point_sets):
        point_dir = os.path.join(self.points_dir, pid)
        if os.path.isdir(point_dir):
            shutil.rmtree(point_dir)  # never read a stale report of an earlier sweep
        os.makedirs(point_dir)
        cmd = self.command(point_sets, point_dir)
        with open(os.path.join(point_dir, "cmd.txt"), "w") as f:
            f.write(simulator.quote(cmd) + "\n")
        t0 = time.monotonic()
        res = {"point": pid, "status": "failed", "error": "", "report": None, "seconds": 0.0}
        with open(os.path.join(point_dir, "stdout.txt"), "wb") as fo, \
                open(os.path.join(point_dir, "stderr.txt"), "wb") as fe:
            with self._lock:
                if self._stopping:
                    res["error"] = "not run: sweep interrupted"
                    return res
                try:
                    proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                            env=simulator.sim_env())
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
            res["error"] = simulator.last_line(err, rc)
        else:
            try:
                res["report"] = Report.load(point_dir)
                res["status"] = "ok"
            except ReportError as e:
                res["error"] = "exit status 0 but no readable report.json: %s" % e
        return res

    def run_all(self, points):
        """points: list of (id, [(k, v), ...]). Returns results in the order of points; an ok
        result's "report" is a Report."""
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


def summarize(prog, results, csv_path):
    failed = [r for r in results if r["status"] != "ok"]
    sys.stderr.write("%s: %d points, %d ok, %d failed; wrote %s\n"
                     % (prog, len(results), len(results) - len(failed), len(failed), csv_path))
    for r in failed:
        sys.stderr.write("%s: failed point %s: %s\n" % (prog, r["point"], r["error"]))
    return 1 if failed else 0
