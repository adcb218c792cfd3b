"""Sweeps on Dask (scripts/swpu/sweep.py through sweep.py --cluster and dse.py): a LocalCluster
of 2 workers, a dask-scheduler plus dask-worker pair started here on 127.0.0.1, the results table
with its provenance, and resuming a killed sweep. Every simulation uses workload.width=0.25
(about 0.2 s each); a test runs a handful of points."""

import csv
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from simulator import REPO, SCRIPTS, SIM, needs_sim  # noqa: E402,F401

SWEEP = os.path.join(SCRIPTS, "sweep.py")
DSE = os.path.join(SCRIPTS, "dse.py")
CONFIG = os.path.join(REPO, "configs", "swpu.json")
FAST = ["--set", "workload.width=0.25"]
PROVENANCE = ["git_commit", "config_hash", "trace_hash", "engine", "sim_sha256"]
DASK_BIN = "/usr/bin"


def run(script, *args, timeout=300):
    return subprocess.run([sys.executable, script] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def records(out):
    recs = {}
    for p in glob.glob(os.path.join(out, "points", "*", "record.json")):
        with open(p) as f:
            recs[os.path.basename(os.path.dirname(p))] = (json.load(f), os.stat(p).st_mtime_ns)
    return recs


def check_table(rows, n):
    assert len(rows) == n
    for r in rows:
        assert r["status"] == "ok", r["error"]
        for c in PROVENANCE:
            assert r[c], (c, r)
        assert r["engine"] == "cycle"  # the default engine (simulation.engine in the effective config)
        assert r["trace_hash"] == "synthetic"
        assert int(r["count_clock_tree.cycle"]) == int(r["cycles"])
        assert int(r["count_pe_array.fp16_mult"]) == int(r["valid_macs"])
        assert float(r["chip_uj"]) > 0
    # the effective config differs between points, so does its hash
    assert len(set(r["config_hash"] for r in rows)) == n


@needs_sim
def test_local_cluster_of_two_workers(tmp_path):
    out = str(tmp_path / "sw")
    p = run(SWEEP, "--config", CONFIG, "--sim", SIM, "--cluster", "local:2", "--out", out,
            "--param", "chip.voltage=0.6,1.0", "--param", "workload.batch=1,2", *FAST)
    assert p.returncode == 0, p.stderr
    assert "a local Dask cluster of 2 worker processes" in p.stderr
    rows = read_rows(os.path.join(out, "sweep.csv"))
    check_table(rows, 4)
    assert [(r["chip.voltage"], r["workload.batch"]) for r in rows] == [
        ("0.6", "1"), ("0.6", "2"), ("1.0", "1"), ("1.0", "2")]
    # the tasks ran in (at most) two worker processes, none in this test's process
    workers = set(r["worker"] for r in rows)
    assert 1 <= len(workers) <= 2
    # a Dask point equals the same point run directly
    d = str(tmp_path / "direct")
    subprocess.run([SIM, "--config", CONFIG, "--set", "workload.width=0.25", "--set",
                    "chip.voltage=0.6", "--set", "workload.batch=2", "--out", d, "-q"], check=True,
                   timeout=60)
    with open(os.path.join(d, "report.json")) as f:
        rep = json.load(f)
    assert int(rows[1]["cycles"]) == rep["totals"]["cycles"]
    assert float(rows[1]["chip_uj"]) == rep["energy"]["chip_uj"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@needs_sim
def test_scheduler_and_worker_processes(tmp_path):
    port = free_port()
    addr = "tcp://127.0.0.1:%d" % port
    env = dict(os.environ, PYTHONPATH="")  # the worker gets the package's code from the client
    logs = [open(str(tmp_path / n), "w") for n in ("scheduler.log", "worker.log")]
    sched = worker = None
    try:
        sched = subprocess.Popen([os.path.join(DASK_BIN, "dask-scheduler"), "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], stdout=logs[0],
                                 stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path))
        worker = subprocess.Popen([os.path.join(DASK_BIN, "dask-worker"), addr, "--nthreads", "1",
                                   "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1",
                                   "--death-timeout", "60"], stdout=logs[1],
                                  stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path))
        deadline = time.monotonic() + 60
        while True:  # until the scheduler listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "dask-scheduler did not start"
                assert sched.poll() is None, "dask-scheduler exited"
                time.sleep(0.2)
        out = str(tmp_path / "sw")
        p = run(SWEEP, "--config", CONFIG, "--sim", SIM, "--cluster", addr, "--out", out,
                "--param", "workload.batch=1,2,3", *FAST, timeout=240)
        assert p.returncode == 0, p.stderr
        assert "the Dask scheduler at %s" % addr in p.stderr
        rows = read_rows(os.path.join(out, "sweep.csv"))
        check_table(rows, 3)
        assert len(set(r["worker"] for r in rows)) == 1  # the one dask-worker
        assert worker.poll() is None and sched.poll() is None
    finally:
        for proc in (worker, sched):
            if proc is not None:
                stop(proc)
        for f in logs:
            f.close()


DSE_SMALL = ["--config", CONFIG, "--sim", SIM, "--cluster", "local:2", "--lanes", "8,16",
             "--windows", "16,64", "--segments", "2,4", "--banks", "8", "--kib-scales", "1",
             "--designs", "3", "--workloads", "resnet18-cifar,resnet18-imagenet", *FAST]


@needs_sim
def test_dse_resumes_only_the_missing_points(tmp_path):
    out = str(tmp_path / "dse")
    p = run(DSE, "--out", out, *DSE_SMALL)
    assert p.returncode == 0, p.stderr
    rows = read_rows(os.path.join(out, "results.csv"))
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    front = read_rows(os.path.join(out, "pareto.csv"))
    assert front and {r["workload"] for r in front} == {"resnet18-cifar", "resnet18-imagenet"}
    # the config's own design (16x16, N 64, D 4) is d000 and is always listed
    assert any(r["design"] == "d000" for r in front)
    assert open(os.path.join(out, "pareto.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    before = records(out)
    assert len(before) == 6
    # as if the sweep had been killed after four points: two points' results are gone
    gone = sorted(before)[:2]
    for k in gone:
        os.unlink(os.path.join(out, "points", k, "record.json"))
    p = run(DSE, "--out", out, *DSE_SMALL)
    assert p.returncode == 0, p.stderr
    assert "6 points, 4 already finished (skipped), 2 to run" in p.stderr
    after = records(out)
    assert sorted(after) == sorted(before)
    for k, (rec, mtime) in after.items():
        if k in gone:
            assert mtime != before[k][1]  # ran again
            assert rec["metrics"]["cycles"] == before[k][0]["metrics"]["cycles"]
        else:
            assert mtime == before[k][1]  # untouched
    assert read_rows(os.path.join(out, "results.csv")) == rows or all(
        a["key"] == b["key"] and a["cycles"] == b["cycles"]
        for a, b in zip(read_rows(os.path.join(out, "results.csv")), rows))


@needs_sim
def test_a_killed_sweep_resumes(tmp_path):
    out = str(tmp_path / "sw")
    args = [SWEEP, "--config", CONFIG, "--sim", SIM, "--cluster", "local:2", "--out", out,
            "--param", "workload.batch=1,2,3,4,5,6,7,8", *FAST]
    proc = subprocess.Popen([sys.executable] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    try:
        deadline = time.monotonic() + 120
        while len(records(out)) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (130, 0), err
    if proc.returncode == 130:
        assert "interrupted" in err
    done = len([r for r, _ in records(out).values() if r["status"] == "ok"])
    assert done >= 2
    p = run(*args)
    assert p.returncode == 0, p.stderr
    assert "8 points, %d already finished (skipped), %d to run" % (done, 8 - done) in p.stderr
    check_table(read_rows(os.path.join(out, "sweep.csv")), 8)


@needs_sim
@pytest.mark.parametrize("args,msg", [
    (["--cluster", "local:0"], "local:N"),
    (["--cluster", "http://x:1"], "tcp://HOST:PORT"),
])
def test_bad_cluster_exit_2(tmp_path, args, msg):
    out = str(tmp_path / "bad")
    p = run(SWEEP, "--config", CONFIG, "--sim", SIM, "--out", out, "--param",
            "workload.batch=1", *args)
    assert p.returncode == 2 and msg in p.stderr
    assert not os.path.exists(out)


@needs_sim
@pytest.mark.parametrize("args,msg", [
    (["--lanes", "7"], "divides"),
    (["--windows", "a"], "integers"),
    (["--set", "compaction.window=32"], "swept by this script"),
    (["--workloads", "resnet18-cifar,nonet"], "refused"),
])
def test_dse_bad_arguments_exit_2(tmp_path, args, msg):
    out = str(tmp_path / "bad")
    p = run(DSE, "--config", CONFIG, "--sim", SIM, "--out", out, *args)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr
    assert not os.path.exists(out)


@needs_sim
def test_engine_is_passed_through_or_refused(tmp_path):
    help_text = subprocess.run([SIM, "--help"], stdout=subprocess.PIPE, universal_newlines=True,
                               timeout=30).stdout
    out = str(tmp_path / "eng")
    p = run(SWEEP, "--config", CONFIG, "--sim", SIM, "--cluster", "local:1", "--engine", "fast",
            "--out", out, "--param", "workload.batch=1", *FAST)
    if "--engine" in help_text:
        assert p.returncode == 0, p.stderr
        with open(os.path.join(out, "points", os.listdir(os.path.join(out, "points"))[0],
                               "cmd.txt")) as f:
            assert "--engine fast" in f.read()
    else:  # this simulator has no --engine: refused before anything runs
        assert p.returncode == 2 and "--engine fast" in p.stderr, p.stderr
        assert not os.path.exists(out)
