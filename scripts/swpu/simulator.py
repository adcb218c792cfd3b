"""Finding and running swpu-sim, and asking it about a config without simulating.

The binary is `--sim PATH` if given, else $SWPU_SIM, else <repo>/build/swpu-sim: this is the only
place that rule lives. f_max, the clock and the energy per action come from the simulator
(`--print-pricing`), never from a Python copy of its formulas.
"""

import hashlib
import json
import os
import shlex
import signal
import subprocess

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
SCRIPTS_DIR = os.path.dirname(PACKAGE_DIR)
REPO_ROOT = os.path.dirname(SCRIPTS_DIR)
DEFAULT_SIM = os.path.join(REPO_ROOT, "build", "swpu-sim")
# SystemC prints a copyright banner on stderr unless this is set.
SIM_ENV = {"SC_COPYRIGHT_MESSAGE": "DISABLE"}


class SimulatorError(Exception):
    """The simulator is missing, or refused a config or an override (its message is the text)."""


def find_simulator(explicit=None):
    """The simulator's absolute path: `explicit` (a --sim argument), else $SWPU_SIM, else
    <repo>/build/swpu-sim. It may not exist; see require_simulator."""
    return os.path.abspath(explicit or os.environ.get("SWPU_SIM") or DEFAULT_SIM)


def simulator_exists(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def require_simulator(explicit=None):
    sim = find_simulator(explicit)
    if not simulator_exists(sim):
        raise SimulatorError("simulator %s not found or not executable (build it with "
                             "scripts/build.sh, or give --sim / SWPU_SIM)" % sim)
    return sim


def sim_env():
    env = dict(os.environ)
    env.update(SIM_ENV)
    return env


def last_line(text, rc=None):
    """The last non-empty line of a message, or what an exit status says when there is none."""
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


def command(sim, config, sets=(), trace=None, out=None, extra=()):
    """swpu-sim's argument list; `sets` is a list of (path, value)."""
    cmd = [sim, "--config", config]
    if trace:
        cmd += ["--trace", trace]
    for k, v in sets:
        cmd += ["--set", "%s=%s" % (k, v)]
    cmd += list(extra)
    if out is not None:
        cmd += ["--out", out, "-q"]
    return cmd


def quote(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


def _ask(sim, config, sets, trace, flag):
    return ask(sim, command(sim, config, sets, trace)[1:], flag)


def ask(sim, args, flag):
    """Runs `sim ARGS FLAG` (FLAG: --print-config or --print-pricing) and returns its JSON."""
    cmd = [sim] + list(args) + [flag]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                           env=sim_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SimulatorError("cannot run %s %s: %s" % (sim, flag, e))
    if p.returncode != 0:
        raise SimulatorError("swpu-sim refused the config or the --set overrides: %s"
                             % last_line(p.stderr.decode("utf-8", "replace"), p.returncode))
    try:
        return json.loads(p.stdout.decode("utf-8"))
    except ValueError as e:
        raise SimulatorError("swpu-sim %s did not print JSON: %s" % (flag, e))


def print_config(sim, config, sets=(), trace=None):
    """The effective config (after the overrides), as `swpu-sim --print-config` prints it."""
    return _ask(sim, config, sets, trace, "--print-config")


def pricing(sim, config, sets=(), trace=None):
    """`swpu-sim --print-pricing`: voltage, clock_mhz, f_max_mhz, leakage_mw and the calibrated
    pJ of every (component, action) at the effective config's voltage."""
    return _ask(sim, config, sets, trace, "--print-pricing")


def f_max_mhz(sim, config, sets, voltage, trace=None):
    """f_max at `voltage` as the simulator computes it (None if it cannot answer)."""
    v = float(voltage)
    sets = [(k, val) for k, val in sets if k not in ("chip.voltage", "chip.frequency_mhz")]
    try:
        cfg = print_config(sim, config, sets, trace)["chip"]
        # Widen the supply range only for this question, so that a voltage the chip refuses
        # still gets its f_max (the point itself then runs, and fails, with the real range).
        widen = [("chip.v_min", repr(min(v, float(cfg["v_min"])))),
                 ("chip.v_max", repr(max(v, float(cfg["v_max"])))),
                 ("chip.voltage", repr(v))]
        return float(pricing(sim, config, sets + widen, trace)["f_max_mhz"])
    except (SimulatorError, KeyError, ValueError):
        return None


def file_sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tree_sha256(path):
    """One hash of a directory's files (names and contents), e.g. a trace."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            h.update(os.path.relpath(p, path).encode() + b"\0")
            h.update(file_sha256(p).encode())
    return h.hexdigest()


def json_sha256(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def git_commit(repo=REPO_ROOT):
    """`git describe --always --dirty --abbrev=12` of the repository, or 'unknown'."""
    try:
        p = subprocess.run(["git", "-C", repo, "describe", "--always", "--dirty", "--abbrev=12"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
        if p.returncode == 0:
            return p.stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown"
