"""swpu: the Python side of swpu-sim.

One place for each job the scripts share:

- simulator: finding the binary, running it, its --print-config / --print-pricing answers
- report:    the one reader of a run's report.json (Report)
- files:     atomic file writes (CSV, text, JSON, matplotlib figures)
- cli:       the shared argparse types and checks (bad input -> UsageError -> exit status 2)
- runner:    the local thread-pool runner of sweep.py / sweep_vf.py / reproduce_paper
- sweep:     resumable sweeps on Dask (one simulator subprocess per task, a tidy results table)
- reprice:   re-pricing saved action counts when only the energy table or the voltage changes
- pareto:    Pareto fronts of design-space sweeps
- baselines, claims, render: the paper reproduction (scripts/reproduce_paper)

The scripts in scripts/ are thin commands on top. Run them with Debian's /usr/bin/python3.
"""
