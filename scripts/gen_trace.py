#!/usr/bin/env -S /usr/bin/python3
"""Train ResNet-18 (CIFAR form) with dynamic weight pruning and write a swpu-sim trace (v1).

Run it with the system interpreter, which has Debian's PyTorch:

    /usr/bin/python3 scripts/gen_trace.py --mode sub-structured --out /tmp/trace

The trace format is docs/trace-format.md; the pruning method, its parameters and the shipped
trace are described in docs/trace-generator.md. Nothing is downloaded: the default data set is
scikit-learn's bundled digits; --dataset-dir reads a local CIFAR-10 copy.
"""

import argparse
import os
import shlex
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch  # noqa: F401
except ImportError as _e:  # pragma: no cover
    sys.exit("gen_trace.py needs PyTorch (%s); run it with the system interpreter: "
             "/usr/bin/python3 scripts/gen_trace.py ..." % _e)
# The generator's parts: data, pruning, recording, and the training loop that ties them.
from swpu import cli  # noqa: E402
from swpu.trace_data import DATASETS, FASHION_MNIST_DIR, DataError  # noqa: E402
from swpu.trace_format import MODES  # noqa: E402
from swpu.trace_recording import ArgError  # noqa: E402
from swpu.trace_training import run  # noqa: E402
from swpu import trace_tensors  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Command line

def build_parser(with_output=True):
    p = argparse.ArgumentParser(
        prog="gen_trace.py",
        description="Train ResNet-18 (CIFAR form) with dynamic weight pruning and write a "
                    "swpu-sim trace (format v1, docs/trace-format.md).")
    a = p.add_argument
    if with_output:
        a("--out", required=True, metavar="DIR", help="trace directory to write")
        a("--overwrite", action="store_true",
          help="replace the manifest and itNNNN/ directories of a trace already in --out")
    g = p.add_argument_group("network")
    g.add_argument("--width", type=cli.positive_float, default=1.0,
                   help="channel multiplier: channels = max(1, round(base * width)) (default 1.0)")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS,
                   help="training data: digits (scikit-learn's bundled 8x8 digits, the tiny "
                        "option), fashion-mnist (IDX files, default directory %s) or cifar10 "
                        "(needs --dataset-dir). Default: cifar10 with --dataset-dir, digits "
                        "without" % FASHION_MNIST_DIR)
    g.add_argument("--dataset-dir", metavar="DIR",
                   help="directory holding the data set: CIFAR-10 (cifar-10-batches-py/) or "
                        "Fashion-MNIST's IDX files; never downloaded")
    g.add_argument("--split-seed", type=int, default=0,
                   help="seed of the digits train/test split and of the image subsets (default 0)")
    g.add_argument("--test-fraction", type=cli.unit_float, default=0.2,
                   help="digits: fraction of the 1797 images held out for testing (default 0.2)")
    g.add_argument("--train-images", type=cli.positive_int,
                   help="use only this many training images (a seeded subset)")
    g.add_argument("--test-images", type=cli.positive_int,
                   help="use only this many test images (a seeded subset)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=cli.positive_int, default=10, help="epochs (default 10)")
    g.add_argument("--iterations", type=cli.positive_int,
                   help="train for exactly this many iterations (overrides --epochs)")
    g.add_argument("--batch-size", type=cli.positive_int, default=64,
                   help="training mini-batch (default 64)")
    g.add_argument("--lr", type=cli.positive_float, default=0.05,
                   help="initial SGD learning rate, cosine-annealed to 0 (default 0.05)")
    g.add_argument("--momentum", type=cli.unit_float, default=0.9, help="SGD momentum (default 0.9)")
    g.add_argument("--weight-decay", type=cli.nonneg_float, default=5e-4,
                   help="L2 weight decay (default 5e-4)")
    g.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    g.add_argument("--threads", type=cli.positive_int,
                   help="PyTorch CPU threads (default: PyTorch's choice)")
    g.add_argument("--log-every", type=int, default=0, metavar="N",
                   help="print training progress every N iterations (default: off)")
    g = p.add_argument_group("pruning")
    g.add_argument("--mode", choices=MODES, default="sub-structured",
                   help="pruning mode (default sub-structured)")
    g.add_argument("--sparsity", type=cli.unit_float, default=0.8,
                   help="final target fraction of pruned weights in each pruned layer "
                        "(default 0.8)")
    g.add_argument("--initial-sparsity", type=cli.unit_float, default=0.0,
                   help="target at the start of the pruning window (default 0)")
    g.add_argument("--prune-start", type=cli.unit_float, default=0.1,
                   help="pruning window start, as a fraction of the iterations (default 0.1)")
    g.add_argument("--prune-end", type=cli.unit_float, default=0.7,
                   help="pruning window end, where the target reaches --sparsity (default 0.7)")
    g.add_argument("--update-interval", type=cli.positive_int, default=10,
                   help="recompute masks every this many iterations in the window (default 10)")
    g.add_argument("--shape-fraction", type=cli.unit_float, default=0.5,
                   help="sub-structured: share of the kept density d = 1 - sparsity given to "
                        "shape pruning, d_shape = d ** shape_fraction; line pruning does the "
                        "rest (default 0.5)")
    g.add_argument("--fc-block", type=cli.positive_int, default=16,
                   help="FC line length B: consecutive inputs of one output neuron (default 16)")
    g.add_argument("--prune-first-conv", action="store_true",
                   help="also prune the stem conv (default: it stays dense)")
    g.add_argument("--no-prune-fc", action="store_true",
                   help="leave the FC layer dense (default: it is pruned)")
    if with_output:
        g = p.add_argument_group("recording")
        g.add_argument("--record-iterations", type=cli.int_list, metavar="I,J,...",
                       help="0-based iterations to record; negative counts from the end "
                            "(-1 = last). Default, without --record-every: the last iteration")
        g.add_argument("--record-every", type=cli.positive_int, metavar="M",
                       help="record iterations 0, M, 2M, ...")
        g.add_argument("--trace-batch", type=cli.positive_int, default=4,
                       help="images recorded per iteration: the first of the training "
                            "mini-batch (default 4)")
        trace_tensors.add_arguments(g)
    return p


def check_args(p, cfg):
    if cfg.prune_end < cfg.prune_start:
        p.error("--prune-end (%g) is before --prune-start (%g)" % (cfg.prune_end, cfg.prune_start))
    if cfg.initial_sparsity > cfg.sparsity:
        p.error("--initial-sparsity (%g) exceeds --sparsity (%g)"
                % (cfg.initial_sparsity, cfg.sparsity))
    if cfg.sparsity >= 1.0:
        p.error("--sparsity must be below 1")
    if cfg.test_fraction <= 0.0 or cfg.test_fraction >= 1.0:
        p.error("--test-fraction must be strictly between 0 and 1")
    if getattr(cfg, "trace_batch", 0) > cfg.batch_size:
        p.error("--trace-batch (%d) exceeds --batch-size (%d)" % (cfg.trace_batch, cfg.batch_size))
    if cfg.dataset_dir is not None and not os.path.isdir(cfg.dataset_dir):
        p.error("--dataset-dir %s: no such directory" % cfg.dataset_dir)


def main(argv=None):
    p = build_parser()
    cfg = p.parse_args(argv)
    cfg.command = None if argv is None else shlex.join(["scripts/gen_trace.py"] + list(argv))
    check_args(p, cfg)
    try:
        res = run(cfg)
    except (ArgError, DataError) as e:
        p.error(str(e))
    print("dataset %s (%d train / %d test images), %d iterations (%.2f epochs), %.0f s"
          % (res["dataset"], res["train_images"], res["test_images"], res["iterations"],
             res["epochs"], res["elapsed_s"]))
    print("final test accuracy: %.4f" % res["test_accuracy"])
    print("weight sparsity per layer (mode %s):" % cfg.mode)
    for name, s in res["weight_sparsity"].items():
        print("  %-20s %.4f%s" % (name, s, "" if name in res["pruned_layers"] else "  (not pruned)"))
    print("pruning ratio over the pruned layers: %.4f; over all conv+fc weights: %.4f"
          % (res["pruning_ratio"], res["overall_weight_sparsity"]))
    print("trace written to %s" % cfg.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
