"""The trace generator's training loop: ResNet-18 (CIFAR form, the layer table of
swpu.trace_format) trained with dynamic pruning (swpu.trace_pruning) on swpu.trace_data,
recorded by swpu.trace_recording."""

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import trace_format
from .trace_data import DataError, augment, evaluate, load_data, normalize
from .trace_pruning import PrunedLayer, cubic_target, update_steps
from . import trace_tensors
from .trace_recording import (Recorder, overall_sparsity, prepare_out_dir, resolve_record,
                              write_iteration, write_manifest)

MODES = trace_format.MODES

# ---------------------------------------------------------------------------------------------
# The network

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet18Cifar(nn.Module):
    """ResNet-18, CIFAR form: 3x3 stride-1 stem, no max-pool, stages of 2 BasicBlocks."""

    def __init__(self, width=1.0, num_classes=10, in_channels=3):
        super().__init__()
        ch = trace_format.channels
        stem = ch(trace_format.RESNET18_STEM, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        cin = stem
        for si, base in enumerate(trace_format.RESNET18_STAGES):
            cout = ch(base, width)
            stride = 1 if si == 0 else 2
            setattr(self, "layer%d" % (si + 1),
                    nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)

    def weighted_layers(self):
        """[(trace name, weight module, following BatchNorm or None)] in trace order."""
        out = [("conv1", self.conv1, self.bn1)]
        for si in range(4):
            for bi, block in enumerate(getattr(self, "layer%d" % (si + 1))):
                prefix = "layer%d.%d" % (si + 1, bi)
                out.append((prefix + ".conv1", block.conv1, block.bn1))
                out.append((prefix + ".conv2", block.conv2, block.bn2))
                if block.downsample is not None:
                    out.append((prefix + ".downsample", block.downsample[0], block.downsample[1]))
        out.append(("fc", self.fc, None))
        return out


def _log(msg):
    print(msg, flush=True)


def run(cfg, log=_log):
    """Train with dynamic pruning; write the trace if cfg.out is set. Return a result dict.

    cfg: an argparse.Namespace from build_parser() (see --help for the fields).
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.time()
    dname, x_tr, y_tr, x_te, y_te, mean, std = load_data(
        cfg.dataset_dir, cfg.split_seed, cfg.test_fraction, cfg.train_images, cfg.test_images,
        getattr(cfg, "dataset", None))
    if len(y_tr) < cfg.batch_size:
        raise DataError("the training set has %d images, fewer than --batch-size %d"
                        % (len(y_tr), cfg.batch_size))
    iters_per_epoch = len(y_tr) // cfg.batch_size
    total = cfg.iterations if cfg.iterations else cfg.epochs * iters_per_epoch
    out_dir = getattr(cfg, "out", None)
    record = resolve_record(cfg, total) if out_dir else set()

    input_chw = tuple(int(v) for v in x_tr.shape[1:])
    model = ResNet18Cifar(cfg.width, 10, input_chw[0])
    layer_list = model.weighted_layers()
    pruned_names = [n for n, _, _ in layer_list
                    if cfg.mode != "dense"
                    and not (n == "conv1" and not cfg.prune_first_conv)
                    and not (n == "fc" and cfg.no_prune_fc)]
    layers = [PrunedLayer(n, m, bn, cfg.fc_block, n in pruned_names) for n, m, bn in layer_list]
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    t0 = int(round(cfg.prune_start * total))
    t1 = min(total - 1, max(t0, int(round(cfg.prune_end * total))))
    steps = update_steps(total, t0, t1, cfg.update_interval) if cfg.mode != "dense" else set()
    recorder = Recorder(layer_list, getattr(cfg, "trace_batch", 1))
    tensors = trace_tensors.TensorRecorder.attach(cfg, layer_list, recorder)
    gen = torch.Generator().manual_seed(cfg.seed)
    pad, flip = (2 if dname == "fashion-mnist" else 4), dname != "digits"

    net_layers = trace_format.resnet18_cifar_layers(cfg.width, 10, input_chw)
    iterations = []
    if out_dir:
        prepare_out_dir(out_dir, cfg.overwrite)

    perm = None
    for t in range(total):
        e, i = divmod(t, iters_per_epoch)
        if i == 0:
            perm = torch.randperm(len(y_tr), generator=gen)
        idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        x = normalize(augment(x_tr[idx], gen, pad, flip), mean, std)
        y = y_tr[idx]
        for g in optimizer.param_groups:
            g["lr"] = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t / total))
        mask_update = t in steps
        if mask_update:
            target = cubic_target(t, t0, t1, cfg.initial_sparsity, cfg.sparsity)
            for pl in layers:
                pl.update(cfg.mode, target, cfg.shape_fraction)
                pl.apply(optimizer)
        rec = t in record
        if rec:
            recorder.start()
        model.train()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        recorder.stop()
        for pl in layers:
            pl.mask_grads()
        optimizer.step()
        for pl in layers:
            pl.apply(optimizer)
        acc = float((logits.argmax(1) == y).float().mean())
        if rec:
            iterations.append(write_iteration(out_dir, t, float(loss), acc, mask_update, layers,
                                              recorder, cfg.mode))
            tensors.write(out_dir, t, iterations[-1])
            log("recorded iteration %d (loss %.4f, batch accuracy %.3f, mask update %s)"
                % (t, float(loss), acc, mask_update))
        if cfg.log_every and (t % cfg.log_every == 0 or t == total - 1):
            log("it %5d/%d epoch %d loss %.4f acc %.3f lr %.4f sparsity %.4f"
                % (t, total, e, float(loss), acc, optimizer.param_groups[0]["lr"],
                   overall_sparsity(layers, pruned_only=False)))
    recorder.remove()
    test_acc = evaluate(model, x_te, y_te, mean, std)
    elapsed = time.time() - t_start
    result = {
        "dataset": dname,
        "train_images": int(len(y_tr)),
        "test_images": int(len(y_te)),
        "iterations": total,
        "epochs": round(total / iters_per_epoch, 4),
        "test_accuracy": round(test_acc, 6),
        "weight_sparsity": {pl.name: round(pl.sparsity(), 6) for pl in layers},
        "pruned_layers": pruned_names,
        "pruning_ratio": round(overall_sparsity(layers, pruned_only=True), 6),
        "overall_weight_sparsity": round(overall_sparsity(layers, pruned_only=False), 6),
        "elapsed_s": round(elapsed, 1),
    }
    if out_dir:
        write_manifest(cfg, net_layers, iterations, result)
        tensors.finish(out_dir)
    return result


