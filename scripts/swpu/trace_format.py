"""Reading, writing and checking swpu-sim sparse training traces (format v1).

The format is specified in docs/trace-format.md. This module needs only NumPy, so that a
trace can be inspected without PyTorch:

    /usr/bin/python3 scripts/trace_format.py check configs/traces/resnet18-cifar-digits-substructured

It also holds the layer table of the built-in `resnet18-cifar` network, which the generator
(scripts/gen_trace.py) builds its model from and which the checker compares a manifest against.
"""

import json
import math
import os

import numpy as np

from .files import write_atomic

FORMAT = "swpu-trace"
VERSION = 1
VERSIONS = (1, 2)  # 2: iterations may hold recorded FP16 tensors (docs/trace-format.md)
TENSOR_KEYS = ("weight", "input", "output_grad")
MODES = ("dense", "structured", "unstructured", "shape-only", "line-only", "sub-structured")
GROUP_MASK_MODES = ("dense", "structured", "shape-only", "line-only", "sub-structured")

# Base channel counts of ResNet-18 (CIFAR form): stem, then stages 1-4.
RESNET18_STAGES = (64, 128, 256, 512)
RESNET18_STEM = 64


def channels(base, width):
    """Channel count of a layer with `base` channels at width multiplier `width`.

    round(base * width) with halves rounded up (as C++ std::round does for positive values),
    and at least 1.
    """
    return max(1, int(math.floor(base * width + 0.5)))


def conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def resnet18_cifar_layers(width=1.0, num_classes=10, input_chw=(3, 32, 32)):
    """Weighted layers of resnet18-cifar in trace order, as manifest `layers` entries.

    Stem: 3x3 stride-1 conv, no max-pool. Four stages of two BasicBlocks; the first block of
    stages 2-4 has stride 2 and a 1x1 stride-2 downsample conv, listed after the block's conv2.
    Global average pool, then FC.
    """
    cin, h, w = input_chw
    layers = []

    def conv(name, ci, co, k, stride, pad, hw):
        oh, ow = conv_out(hw[0], k, stride, pad), conv_out(hw[1], k, stride, pad)
        layers.append({"name": name, "type": "conv", "in_channels": ci, "out_channels": co,
                       "kernel": k, "stride": stride, "pad": pad,
                       "in_hw": [hw[0], hw[1]], "out_hw": [oh, ow]})
        return (oh, ow)

    stem = channels(RESNET18_STEM, width)
    hw = conv("conv1", cin, stem, 3, 1, 1, (h, w))
    ci = stem
    for si, base in enumerate(RESNET18_STAGES):
        co = channels(base, width)
        for bi in range(2):
            stride = 2 if (si > 0 and bi == 0) else 1
            prefix = "layer%d.%d" % (si + 1, bi)
            hw_in = hw
            hw1 = conv(prefix + ".conv1", ci, co, 3, stride, 1, hw_in)
            conv(prefix + ".conv2", co, co, 3, 1, 1, hw1)
            if stride != 1 or ci != co:
                conv(prefix + ".downsample", ci, co, 1, stride, 0, hw_in)
            hw = hw1
            ci = co
    layers.append({"name": "fc", "type": "fc", "in_features": ci, "out_features": num_classes})
    return layers


def network_layers(network):
    """Layer table of a manifest's `network` block (only resnet18-cifar is built in here)."""
    if network.get("name") != "resnet18-cifar":
        raise ValueError("network %r has no built-in layer table in trace_format.py"
                         % network.get("name"))
    # width, num_classes and input are optional, with the defaults of docs/trace-format.md.
    return resnet18_cifar_layers(network.get("width", 1.0), network.get("num_classes", 10),
                                 tuple(network.get("input", (3, 32, 32))))


# ---------------------------------------------------------------------------------------------
# Shapes of the per-layer arrays

def mask_shapes(layer, fc_block):
    """(line_mask shape, shape_mask shape, element_mask shape) of a manifest layer entry."""
    if layer["type"] == "conv":
        k, c, r = layer["out_channels"], layer["in_channels"], layer["kernel"]
        return [k, c, r], [c, r, r], [k, c, r, r]
    f, k = layer["in_features"], layer["out_features"]
    return [k, -(-f // fc_block)], [f], [k, f]


def activation_shapes(layer, batch):
    """(input_nonzero shape, output_grad_nonzero shape) of a manifest layer entry."""
    if layer["type"] == "conv":
        return ([batch, layer["in_channels"]] + list(layer["in_hw"]),
                [batch, layer["out_channels"]] + list(layer["out_hw"]))
    return [batch, layer["in_features"]], [batch, layer["out_features"]]


def packed_length(shape):
    return -(-int(np.prod(shape, dtype=np.int64)) // 8)


# ---------------------------------------------------------------------------------------------
# Bitmaps

def write_bitmap(trace_dir, relpath, bits):
    """Write a boolean array as a bit-packed .npy file; return its manifest entry."""
    bits = np.asarray(bits)
    path = os.path.join(trace_dir, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    packed = np.packbits(bits.astype(bool).ravel())

    def save(tmp):
        with open(tmp, "wb") as f:
            np.save(f, packed, allow_pickle=False)
    write_atomic(path, save)
    return {"file": relpath, "shape": [int(d) for d in bits.shape]}


def _safe_path(trace_dir, relpath):
    if os.path.isabs(relpath):
        raise ValueError("path %r is absolute; trace paths must be relative" % relpath)
    root = os.path.realpath(trace_dir)
    path = os.path.realpath(os.path.join(root, relpath))
    if os.path.commonpath([root, path]) != root:
        raise ValueError("path %r leaves the trace directory" % relpath)
    return path


def read_bitmap(trace_dir, entry):
    """Read a manifest bitmap entry {"file", "shape"} back as a boolean array of that shape."""
    shape = [int(d) for d in entry["shape"]]
    packed = np.load(_safe_path(trace_dir, entry["file"]), allow_pickle=False)
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise ValueError("%s: expected a 1-D uint8 array, got %s %s"
                         % (entry["file"], packed.dtype, packed.shape))
    if packed.size != packed_length(shape):
        raise ValueError("%s: %d bytes, expected %d for shape %s"
                         % (entry["file"], packed.size, packed_length(shape), shape))
    count = int(np.prod(shape, dtype=np.int64))
    return np.unpackbits(packed, count=count).reshape(shape).astype(bool)


def effective_mask(layer, masks, fc_block):
    """Element-wise weight mask (conv [K,C,R,S], FC [K,F]) from a layer's mask entries."""
    if "element_mask" in masks:
        return masks["element_mask"]
    line, shape = masks["line_mask"], masks["shape_mask"]
    if layer["type"] == "conv":
        return line[:, :, :, None] & shape[None, :, :, :]
    f = layer["in_features"]
    return np.repeat(line, fc_block, axis=1)[:, :f] & shape[None, :]


# ---------------------------------------------------------------------------------------------
# Manifest

def dump_manifest(manifest, line_width=100):
    """The manifest as JSON text: indented, with any array or object that fits on one line
    written on one line."""
    def fmt(v, indent):
        flat = json.dumps(v)
        if not isinstance(v, (dict, list)) or len(flat) + indent <= line_width or not v:
            return flat
        pad = " " * (indent + 1)
        if isinstance(v, dict):
            items = ["%s%s: %s" % (pad, json.dumps(k), fmt(x, indent + 1)) for k, x in v.items()]
            return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
        items = [pad + fmt(x, indent + 1) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return fmt(manifest, 0) + "\n"


def _no_duplicates(pairs):
    """json object_pairs_hook: a key given twice in one object is an error (as in swpu-sim)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("duplicate key %r" % key)
        out[key] = value
    return out


def load_manifest(trace_dir):
    with open(os.path.join(trace_dir, "manifest.json")) as f:
        return json.load(f, object_pairs_hook=_no_duplicates)


# The keys of each object of a manifest (docs/trace-format.md); any other key is an error.
KNOWN_KEYS = {
    "": {"format", "version", "network", "batch", "pruning", "source", "layers", "iterations"},
    "network": {"name", "width", "num_classes", "input"},
    "pruning": {"mode", "fc_block"},
    "conv": {"name", "type", "in_channels", "out_channels", "kernel", "stride", "pad", "in_hw", "out_hw"},
    "fc": {"name", "type", "in_features", "out_features"},
    "iteration": {"index", "loss", "accuracy", "mask_update", "layers"},
    "entry": {"line_mask", "shape_mask", "element_mask", "input_nonzero", "input_density",
              "output_grad_nonzero", "output_grad_density"},
    "entry_v2": {"line_mask", "shape_mask", "element_mask", "input_nonzero", "input_density",
                 "output_grad_nonzero", "output_grad_density"} | set(TENSOR_KEYS),
    "file": {"file", "shape"},
}


def _unknown_keys(m):
    """Problems for keys the format does not define, at every level of manifest m."""
    found = []

    def check(obj, kind, where):
        if isinstance(obj, dict):
            found.extend("%s: unknown field %r" % (where, k) for k in obj if k not in KNOWN_KEYS[kind])

    check(m, "", "manifest")
    check(m.get("network"), "network", "network")
    check(m.get("pruning"), "pruning", "pruning")
    for i, layer in enumerate(m.get("layers") or []):
        if isinstance(layer, dict):
            check(layer, "fc" if layer.get("type") == "fc" else "conv", "layers[%d]" % i)
    for i, it in enumerate(m.get("iterations") or []):
        if not isinstance(it, dict):
            continue
        check(it, "iteration", "iterations[%d]" % i)
        for name, e in (it.get("layers") or {}).items():
            check(e, "entry_v2" if m.get("version") == 2 else "entry", "iterations[%d].layers.%s" % (i, name))
            for key, v in (e.items() if isinstance(e, dict) else []):
                if not key.endswith("density"):
                    check(v, "file", "iterations[%d].layers.%s.%s" % (i, name, key))
    return found


def check_trace(trace_dir, load_bitmaps=True):
    """Check a trace directory against format v1 or v2; return a list of problems (empty if valid).

    Checks the header, the layer table against the built-in network, every file's existence,
    path, dtype and packed length, the mask kinds allowed by the pruning mode, and (with
    load_bitmaps) the structure of the masks: structured masks prune whole filters (conv) or
    whole input neurons (FC), shape-only has all-ones line masks, line-only all-ones shape masks,
    dense all-ones masks.
    """
    problems = []
    try:
        m = load_manifest(trace_dir)
    except (OSError, ValueError) as e:
        return ["manifest.json: %s" % e]
    if not isinstance(m, dict):
        return ["manifest.json: the manifest must be a JSON object"]
    problems += _unknown_keys(m)
    if m.get("format") != FORMAT or m.get("version") not in VERSIONS:
        problems.append("format/version is %r/%r, expected %r/1 or 2"
                        % (m.get("format"), m.get("version"), FORMAT))
    try:
        expected = network_layers(m["network"])
    except (KeyError, ValueError, TypeError) as e:
        return problems + ["network: %s" % e]
    if m.get("layers") != expected:
        problems.append("layers do not match the built-in %s table" % m["network"]["name"])
    mode = m.get("pruning", {}).get("mode")
    fc_block = m.get("pruning", {}).get("fc_block", 16)  # optional, default 16
    if mode not in MODES:
        problems.append("pruning.mode %r is not one of %s" % (mode, ", ".join(MODES)))
    if not isinstance(fc_block, int) or fc_block < 1:
        problems.append("pruning.fc_block %r is not a positive integer" % fc_block)
        fc_block = 1
    batch = m.get("batch")
    if not isinstance(batch, int) or batch < 1:
        return problems + ["batch %r is not a positive integer" % batch]
    iterations = m.get("iterations")
    if not iterations:
        problems.append("no iterations")
        return problems
    for it in iterations:
        where = "iteration %s" % it.get("index")
        lay = it.get("layers", {})
        for layer in expected:
            name = layer["name"]
            e = lay.get(name)
            if e is None:
                problems.append("%s: layer %s missing" % (where, name))
                continue
            lshape, sshape, eshape = mask_shapes(layer, fc_block)
            ashape, gshape = activation_shapes(layer, batch)
            want = {}
            if mode == "unstructured":
                want["element_mask"] = eshape
                if "line_mask" in e or "shape_mask" in e:
                    problems.append("%s/%s: group masks in unstructured mode" % (where, name))
            elif "element_mask" in e:
                problems.append("%s/%s: element_mask in mode %s" % (where, name, mode))
            elif "line_mask" in e or "shape_mask" in e or mode != "dense":
                want["line_mask"], want["shape_mask"] = lshape, sshape
            if "input_density" not in e:
                want["input_nonzero"] = ashape
            if "output_grad_density" not in e:
                want["output_grad_nonzero"] = gshape
            bits = {}
            for key, shape in want.items():
                if key not in e:
                    problems.append("%s/%s: %s missing" % (where, name, key))
                    continue
                if list(e[key].get("shape", [])) != shape:
                    problems.append("%s/%s: %s shape %s, expected %s"
                                    % (where, name, key, e[key].get("shape"), shape))
                    continue
                try:
                    path = _safe_path(trace_dir, e[key]["file"])
                    if not load_bitmaps:
                        if not os.path.isfile(path):
                            problems.append("%s/%s: %s not found" % (where, name, key))
                        continue
                    bits[key] = read_bitmap(trace_dir, e[key])
                except (OSError, ValueError) as err:
                    problems.append("%s/%s: %s: %s" % (where, name, key, err))
            problems += ["%s/%s: %s" % (where, name, p)
                         for p in _mask_structure_problems(layer, mode, bits)]
            if load_bitmaps:
                problems += ["%s/%s: %s" % (where, name, p)
                             for p in _tensor_problems(trace_dir, layer, batch, e, bits)]
    return problems


def tensor_shapes(layer, batch):
    """{key: shape} of the recorded tensors of a manifest layer entry (format v2)."""
    ashape, gshape = activation_shapes(layer, batch)
    if layer["type"] == "conv":
        k, c, r = layer["out_channels"], layer["in_channels"], layer["kernel"]
        return {"weight": [k, c, r, r], "input": ashape, "output_grad": gshape}
    return {"weight": [layer["out_features"], layer["in_features"]], "input": ashape, "output_grad": gshape}


def read_tensor(trace_dir, entry):
    """A recorded tensor {"file", "shape"}: a C-order float16 .npy array of exactly that shape."""
    a = np.load(_safe_path(trace_dir, entry["file"]), allow_pickle=False)
    if a.dtype != np.dtype("<f2"):
        raise ValueError("%s: dtype %s, expected float16 ('<f2')" % (entry["file"], a.dtype))
    if list(a.shape) != [int(d) for d in entry["shape"]]:
        raise ValueError("%s: array shape %s, expected %s" % (entry["file"], list(a.shape), entry["shape"]))
    if not a.flags["C_CONTIGUOUS"]:
        raise ValueError("%s: not in C order" % entry["file"])
    return a


def _tensor_problems(trace_dir, layer, batch, e, bits):
    """Problems of a v2 entry's recorded tensors: shapes, dtype, finiteness, and values non-zero
    only where the bitmap says so (the rules of swpu-sim's loader, docs/trace-format.md)."""
    out = []
    shapes = tensor_shapes(layer, batch)
    bitmap_of = {"input": "input_nonzero", "output_grad": "output_grad_nonzero"}
    for key in TENSOR_KEYS:
        if key not in e:
            continue
        entry = e[key]
        if list(entry.get("shape", [])) != shapes[key]:
            out.append("%s shape %s, expected %s" % (key, entry.get("shape"), shapes[key]))
            continue
        try:
            a = read_tensor(trace_dir, entry)
        except (OSError, ValueError) as err:
            out.append("%s: %s" % (key, err))
            continue
        if not np.isfinite(a).all():
            out.append("%s: a value is not finite (inf or NaN)" % key)
        if key in bitmap_of:
            bm = bitmap_of[key]
            if bm not in e:
                out.append("%s needs %s (a density is not enough)" % (key, bm))
            elif bm in bits and ((a != 0) & ~bits[bm]).any():
                out.append("%s: a non-zero value where %s is 0" % (key, bm))
    return out


def _mask_structure_problems(layer, mode, bits):
    line, shape = bits.get("line_mask"), bits.get("shape_mask")
    if line is None or shape is None:
        return []
    out = []
    if mode == "dense" and not (line.all() and shape.all()):
        out.append("dense mode with a pruned weight")
    if mode == "shape-only" and not line.all():
        out.append("shape-only mode with a pruned line")
    if mode == "line-only" and not shape.all():
        out.append("line-only mode with a pruned shape group")
    if mode == "structured":
        if layer["type"] == "conv":
            per_filter = line.reshape(line.shape[0], -1)
            if not (shape.all() and (per_filter.all(axis=1) | ~per_filter.any(axis=1)).all()):
                out.append("structured mode with a mask that is not whole filters")
        elif not line.all():
            out.append("structured FC mask that is not whole input neurons")
    return out
