"""Recording real tensors into a trace (format version 2, docs/trace-format.md): for chosen layers
of the recorded iterations, the FP16 values of the weights, the input activations and the output
gradients of the first `trace_batch` images, next to the bitmaps the trace already holds.

swpu-sim's functional mode then computes with these values instead of random ones, and
`--dump-tensors` + scripts/check_functional.py hold its results against PyTorch.

The generator's hook: `TensorRecorder.attach(cfg, layers, recorder)` after the bitmap recorder is
made, `write(out, t, entry)` after an iteration's entry is written, `finish(out)` after the
manifest (which it marks version 2 when it added tensors)."""

import json
import os

import numpy as np

from . import trace_format
from .files import write_atomic, write_text_atomic

VERSION = 2


def add_arguments(group):
    """The generator's options (its "recording" argument group)."""
    group.add_argument("--record-tensors", metavar="LAYERS",
                       help="comma-separated conv/fc layers whose FP16 weights, input activations and "
                            "output gradients are recorded (trace format version 2), or 'all'")
    group.add_argument("--record-tensor-iterations", metavar="I,J,...",
                       help="with --record-tensors: only these of the recorded iterations (0-based "
                            "training steps; default all recorded)")


class TensorRecorder:
    """Captures, while the bitmap recorder is on, the values of the selected layers."""

    def __init__(self, layers, recorder, names, steps):
        self.recorder = recorder
        self.steps = steps
        self.values = {}
        self.written = 0
        self.handles = []
        for name, module, _ in layers:
            if name in names:
                self.handles.append(module.register_forward_pre_hook(self._pre(name)))
                self.handles.append(module.register_forward_hook(self._post(name)))

    @classmethod
    def attach(cls, cfg, layers, recorder):
        """A recorder for cfg.record_tensors, or an inert one when the option is not given."""
        spec = getattr(cfg, "record_tensors", None)
        if not spec:
            return cls([], recorder, set(), None)
        known = [n for n, _, _ in layers]
        names = set(known) if spec == "all" else set(s for s in spec.split(",") if s)
        unknown = sorted(names - set(known))
        if unknown or not names:
            from .trace_recording import ArgError
            raise ArgError("--record-tensors %s: %s is not a conv/fc layer of the network (known: %s)"
                           % (spec, ", ".join(unknown) or "''", ", ".join(known)))
        steps = None
        its = getattr(cfg, "record_tensor_iterations", None)
        if its:
            try:
                steps = set(int(s) for s in its.split(","))
            except ValueError:
                from .trace_recording import ArgError
                raise ArgError("--record-tensor-iterations %s: expected comma-separated step numbers"
                               % its)
        return cls(layers, recorder, names, steps)

    def _pre(self, name):
        def hook(module, inputs):
            if self.recorder.on:
                b = self.recorder.batch
                self.values[name] = {"weight": module.weight.detach().clone(),
                                     "input": inputs[0][:b].detach().clone()}
        return hook

    def _post(self, name):
        def hook(module, inputs, output):
            if self.recorder.on and output.requires_grad:
                def grad_hook(g):
                    self.values[name]["output_grad"] = g[:self.recorder.batch].detach().clone()
                output.register_hook(grad_hook)
        return hook

    def write(self, out, t, entry):
        """Adds the captured tensors of training step t to its iteration entry (and files)."""
        if self.steps is not None and t not in self.steps:
            self.values = {}
            return
        for name, vals in sorted(self.values.items()):
            e = entry["layers"][name]
            for key, v in (("weight", vals["weight"]), ("input", vals["input"]),
                           ("output_grad", vals.get("output_grad"))):
                if v is None:
                    continue
                a = v.numpy().astype(np.float16)
                if not np.isfinite(a).all():
                    raise ValueError("%s %s of step %d does not fit FP16 (inf after rounding)"
                                     % (name, key, t))
                rel = "it%04d/%s.%s.f16.npy" % (t, name, key)
                path = os.path.join(out, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)

                def save(tmp, a=a):
                    with open(tmp, "wb") as f:
                        np.save(f, np.ascontiguousarray(a), allow_pickle=False)
                write_atomic(path, save)
                e[key] = {"file": rel, "shape": [int(d) for d in a.shape]}
        self.written += len(self.values)
        self.values = {}

    def finish(self, out):
        """Marks the manifest version 2 when tensors were written; removes the hooks."""
        for h in self.handles:
            h.remove()
        if not self.written:
            return
        path = os.path.join(out, "manifest.json")
        with open(path) as f:
            text = f.read()
        m = json.loads(text)
        m["version"] = VERSION
        write_text_atomic(path, trace_format.dump_manifest(m))
