"""Recording a training run as a swpu-sim trace (docs/trace-format.md): the hooks that capture the
non-zero bitmaps, the iteration files and the manifest (written atomically)."""

import os
import shlex
import shutil
import sys

import torch

from . import trace_format
from .files import write_text_atomic

# ---------------------------------------------------------------------------------------------
# Training with recording

class Recorder:
    """Hooks that capture the non-zero bitmaps of the first `batch` images of a training step."""

    def __init__(self, layers, batch):
        self.batch = batch
        self.on = False
        self.act, self.grad = {}, {}
        self.handles = []
        for name, module, _ in layers:
            self.handles.append(module.register_forward_pre_hook(self._pre(name)))
            self.handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(module, inputs):
            if self.on:
                self.act[name] = (inputs[0][:self.batch] != 0).detach().numpy()
        return hook

    def _post(self, name):
        def hook(module, inputs, output):
            if self.on and output.requires_grad:
                def grad_hook(g):
                    self.grad[name] = (g[:self.batch] != 0).detach().numpy()
                output.register_hook(grad_hook)
        return hook

    def start(self):
        self.act, self.grad, self.on = {}, {}, True

    def stop(self):
        self.on = False

    def remove(self):
        for h in self.handles:
            h.remove()




def overall_sparsity(layers, pruned_only):
    sel = [pl for pl in layers if pl.prunable or not pruned_only]
    tot = sum(pl.mask.numel() for pl in sel)
    kept = sum(int(pl.mask.sum()) for pl in sel)
    return 1.0 - kept / tot if tot else 0.0


def resolve_record(cfg, total):
    rec = set()
    for r in cfg.record_iterations or []:
        if not -total <= r < total:
            raise ArgError("--record-iterations: %d is outside the run's %d iterations "
                           "(0..%d, or negative from the end)" % (r, total, total - 1))
        rec.add(r % total)
    if cfg.record_every:
        rec.update(range(0, total, cfg.record_every))
    if not rec:
        rec.add(total - 1)
    return rec


class ArgError(Exception):
    pass


def prepare_out_dir(out, overwrite):
    if os.path.exists(out) and not os.path.isdir(out):
        raise ArgError("--out %s exists and is not a directory" % out)
    if os.path.isdir(out) and os.listdir(out):
        if not overwrite:
            raise ArgError("--out %s is not empty (use --overwrite to replace a trace there)"
                           % out)
        for entry in os.listdir(out):
            p = os.path.join(out, entry)
            if entry == "manifest.json":
                os.remove(p)
            elif entry.startswith("it") and entry[2:].isdigit() and os.path.isdir(p):
                shutil.rmtree(p)
    os.makedirs(out, exist_ok=True)


def write_iteration(out, t, loss, acc, mask_update, layers, recorder, mode):
    d = "it%04d" % t
    entry = {"index": t, "loss": round(loss, 6), "accuracy": round(acc, 6),
             "mask_update": mask_update, "layers": {}}
    kinds = {"line_mask": "line", "shape_mask": "shape", "element_mask": "elem"}
    for pl in layers:
        e = {}
        for key, bits in pl.trace_masks(mode).items():
            e[key] = trace_format.write_bitmap(out, "%s/%s.%s.npy" % (d, pl.name, kinds[key]), bits)
        e["input_nonzero"] = trace_format.write_bitmap(out, "%s/%s.act.npy" % (d, pl.name),
                                                     recorder.act[pl.name])
        e["output_grad_nonzero"] = trace_format.write_bitmap(out, "%s/%s.grad.npy" % (d, pl.name),
                                                           recorder.grad[pl.name])
        entry["layers"][pl.name] = e
    return entry


def write_manifest(cfg, net_layers, iterations, result):
    source = {
        "generator": "scripts/gen_trace.py",
        "command": shlex.join([sys.executable] + sys.argv) if cfg.command is None
        else cfg.command,
        "dataset": result["dataset"],
        "seed": cfg.seed,
        "split_seed": cfg.split_seed,
        "train_images": result["train_images"],
        "test_images": result["test_images"],
        "epochs": result["epochs"],
        "iterations": result["iterations"],
        "batch_size": cfg.batch_size,
        "optimizer": {"type": "sgd", "lr": cfg.lr, "schedule": "cosine",
                      "momentum": cfg.momentum, "weight_decay": cfg.weight_decay},
        "pruning": {"target_sparsity": cfg.sparsity, "initial_sparsity": cfg.initial_sparsity,
                    "schedule": "cubic", "prune_start": cfg.prune_start,
                    "prune_end": cfg.prune_end, "update_interval": cfg.update_interval,
                    "shape_fraction": cfg.shape_fraction, "ranking": "l2-norm",
                    "regrowth": False, "pruned_layers": result["pruned_layers"]},
        "trace_batch_from": "first images of the recorded training step's mini-batch",
        "final_test_accuracy": result["test_accuracy"],
        "weight_sparsity": result["weight_sparsity"],
        "pruning_ratio": result["pruning_ratio"],
        "overall_weight_sparsity": result["overall_weight_sparsity"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    manifest = {
        "format": trace_format.FORMAT,
        "version": trace_format.VERSION,
        "network": {"name": "resnet18-cifar", "width": cfg.width, "num_classes": 10,
                    "input": [net_layers[0]["in_channels"]] + list(net_layers[0]["in_hw"])},
        "batch": cfg.trace_batch,
        "pruning": {"mode": cfg.mode, "fc_block": cfg.fc_block},
        "source": source,
        "layers": net_layers,
        "iterations": iterations,
    }
    write_text_atomic(os.path.join(cfg.out, "manifest.json"), trace_format.dump_manifest(manifest))
