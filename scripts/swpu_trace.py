#!/usr/bin/env -S /usr/bin/python3
"""Checks a swpu-sim sparse training trace (format v1 or v2, docs/trace-format.md). NumPy only, so a
trace can be inspected without PyTorch:

    /usr/bin/python3 scripts/swpu_trace.py check configs/traces/resnet18-cifar-digits-substructured

Reading, writing and the layer table of the built-in `resnet18-cifar` network are in
scripts/swpu/trace_format.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swpu.trace_format import check_trace, load_manifest  # noqa: E402


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="check a trace directory against format v1 or v2 (with its recorded tensors)")
    c.add_argument("trace_dir")
    c.add_argument("--quick", action="store_true", help="check file existence only, not contents")
    a = p.parse_args(argv)
    if not os.path.isfile(os.path.join(a.trace_dir, "manifest.json")):
        p.error("%s: no manifest.json" % a.trace_dir)
    problems = check_trace(a.trace_dir, load_bitmaps=not a.quick)
    for pr in problems:
        print(pr)
    if problems:
        print("%s: %d problem(s)" % (a.trace_dir, len(problems)))
        return 1
    m = load_manifest(a.trace_dir)
    print("%s: valid swpu-trace v%d, %s width %g, mode %s, batch %d, %d iteration(s)"
          % (a.trace_dir, m["version"], m["network"]["name"], m["network"]["width"], m["pruning"]["mode"],
             m["batch"], len(m["iterations"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
