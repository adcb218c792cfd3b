"""Command-line pieces the scripts share. Bad input raises UsageError; a script turns it into a
message on stderr and exit status 2, before anything is written."""

import argparse
import math
import os
import re
import sys

from . import simulator

PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class UsageError(Exception):
    """Bad command-line input: the scripts exit with status 2."""


def die_usage(prog, msg):
    sys.stderr.write("%s: error: %s\n" % (prog, msg))
    sys.exit(2)


def parse_assignment(text, what):
    """'path=value' -> (path, value); raises UsageError."""
    if "=" not in text:
        raise UsageError("%s %r: expected PATH=VALUE" % (what, text))
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or not PATH_RE.fullmatch(key):
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


def parse_params(items):
    """['a.b=1,2', ...] -> [('a.b', ['1', '2']), ...]: swept parameters."""
    if not items:
        raise UsageError("give at least one --param PATH=V1,V2,...")
    params, seen = [], set()
    for item in items:
        key, values = parse_assignment(item, "--param")
        vals = [v.strip() for v in values.split(",")]
        if not values or any(v == "" for v in vals):
            raise UsageError("--param %r: empty value in the list" % item)
        if key in seen:
            raise UsageError("--param %s given twice" % key)
        if len(set(vals)) != len(vals):
            raise UsageError("--param %r: repeated value" % item)
        seen.add(key)
        params.append((key, vals))
    return params


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
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % n)
    return n


def positive_float(text):
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text)
    if not (x > 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError("must be a positive number, got %r" % text)
    return x


def int_list(text):
    """Comma-separated integers (empty entries ignored)."""
    try:
        return [int(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)


def unit_float(text):
    """A number in [0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number in [0, 1], got %r" % text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("expected a number in [0, 1], got %r" % text)
    return v


def nonneg_float(text):
    """A finite number >= 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number >= 0, got %r" % text)
    if not v >= 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError("expected a number >= 0, got %r" % text)
    return v


def cluster_spec(text):
    """--cluster: 'local' (local worker processes, one per core), 'local:N' (N workers) or
    'tcp://HOST:PORT' (an existing dask-scheduler). Returns ('local', N or None) or
    ('tcp', address)."""
    if text == "local":
        return ("local", None)
    if text.startswith("local:"):
        try:
            n = int(text[len("local:"):])
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError("local:N needs a worker count N >= 1, got %r" % text)
        return ("local", n)
    m = re.fullmatch(r"tcp://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):([0-9]{1,5})", text)
    if m and 0 < int(m.group(2)) < 65536:
        return ("tcp", text)
    raise argparse.ArgumentTypeError("expected local, local:N or tcp://HOST:PORT, got %r" % text)


def fmt_num(x):
    """A number as the shortest text that reads back to the same value (for --set)."""
    return repr(float(x))


def slug(sets):
    """A short, file-system-safe label of a point's overrides."""
    s = "_".join("%s-%s" % (k.split(".")[-1], v) for k, v in sets)
    return re.sub(r"[^A-Za-z0-9._+-]", "-", s)[:80]


def add_common_arguments(ap, out_required=True):
    """Options shared by the sweep scripts."""
    ap.add_argument("--config", required=True, metavar="FILE", help="chip config (JSON), passed to swpu-sim")
    ap.add_argument("--trace", metavar="DIR", help="sparse training trace directory, passed to swpu-sim")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="config override applied to every point (repeatable)")
    ap.add_argument("--out", required=out_required, metavar="DIR", help="output directory of the sweep")
    ap.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                    help="simulations run in parallel (default: os.cpu_count() = %(default)s)")
    add_sim_argument(ap)
    ap.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                    help="fail a point whose simulation runs longer than this (default: no limit)")
    ap.add_argument("-q", "--quiet", action="store_true",
                    help="report only failed points and the summary on stderr")


def add_sim_argument(ap):
    ap.add_argument("--sim", metavar="PATH",
                    help="simulator binary (default: $SWPU_SIM, else <repo>/build/swpu-sim)")


def add_cluster_arguments(ap, default=None):
    ap.add_argument("--cluster", type=cluster_spec, default=default, metavar="SPEC",
                    help="run on Dask: local (a local cluster, one worker process per core), "
                         "local:N (N workers) or tcp://HOST:PORT (an existing dask-scheduler)")
    ap.add_argument("--engine", metavar="NAME",
                    help="pass --engine NAME to every simulation (default: pass nothing; the "
                         "engine the simulator used is recorded from its effective config)")


def resolve_common(args):
    """Checks the shared arguments; returns (sim, config, trace, sets). Raises UsageError."""
    try:
        sim = simulator.require_simulator(args.sim)
    except simulator.SimulatorError as e:
        raise UsageError(str(e))
    config = os.path.abspath(args.config)
    if not os.path.isfile(config):
        raise UsageError("config file %s not found" % args.config)
    trace = None
    if args.trace is not None:
        trace = os.path.abspath(args.trace)
        if not os.path.isdir(trace):
            raise UsageError("trace directory %s not found" % args.trace)
    sets = parse_sets(args.set)
    if getattr(args, "out", None):
        out = os.path.abspath(args.out)
        if os.path.exists(out) and not os.path.isdir(out):
            raise UsageError("--out %s exists and is not a directory" % args.out)
    return sim, config, trace, sets


def effective_config(sim, config, sets, trace=None):
    """swpu-sim --print-config, with its refusal as a UsageError."""
    try:
        return simulator.print_config(sim, config, sets, trace)
    except simulator.SimulatorError as e:
        raise UsageError(str(e))


def engine_args(sim, config, engine, trace=None):
    """The simulator arguments of --engine NAME ([] without it), after checking that this
    simulator takes them (`--print-config` with them)."""
    if not engine:
        return []
    extra = ["--engine", engine]
    try:
        simulator.ask(sim, simulator.command(sim, config, (), trace)[1:] + extra, "--print-config")
    except simulator.SimulatorError as e:
        raise UsageError("--engine %s: %s" % (engine, e))
    return extra


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
