"""Reads bench_sim JSON lines on stdin and prints one line of medians (used by run_benchmarks.sh)."""
import json
import statistics
import sys

rows = [json.loads(line) for line in sys.stdin if line.strip()]
name = sys.argv[1]
cycles = rows[0]["simulated_cycles"]
host = statistics.median(r["host_seconds"] for r in rows)
rate = statistics.median(r["cycles_per_second"] for r in rows) / 1e6
rss = max(r["peak_rss_mb"] for r in rows)
print(f"{name:30s} cycles {cycles:>11d}  host s (median of {len(rows)}) {host:7.3f}  "
      f"cycles/s {rate:7.2f} M  peak RSS {rss:6.1f} MB")
