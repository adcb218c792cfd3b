"""Training data of the trace generator: scikit-learn's bundled digits (nothing downloaded, the
tiny option for tests), Fashion-MNIST from its IDX files (Debian's dataset-fashion-mnist), or a
local CIFAR-10 copy; the augmentation, normalisation and the accuracy evaluation."""

import gzip
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
DATASETS = ("digits", "fashion-mnist", "cifar10")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                       "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# ---------------------------------------------------------------------------------------------
# Data

class DataError(Exception):
    pass


def read_idx(path):
    """Read one IDX file (gzip-compressed when its name ends in .gz) into a numpy array.

    IDX: two zero bytes, a type byte, a dimension count n, n big-endian uint32 sizes, the data.
    Raises DataError naming the file and what is wrong with it.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError("%s: no such file" % path)
    except (OSError, EOFError) as e:
        raise DataError("%s: cannot read (%s)" % (path, e))
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError("%s: not an IDX file (the first two bytes must be zero)" % path)
    dtype, ndim = raw[2], raw[3]
    if dtype not in IDX_TYPES:
        raise DataError("%s: unknown IDX element type 0x%02x" % (path, dtype))
    head = 4 + 4 * ndim
    if ndim == 0 or len(raw) < head:
        raise DataError("%s: truncated IDX header (%d dimensions)" % (path, ndim))
    dims = struct.unpack(">%dI" % ndim, raw[4:head])
    dt = np.dtype(IDX_TYPES[dtype])
    need = int(np.prod(dims)) * dt.itemsize
    if len(raw) - head != need:
        raise DataError("%s: IDX header says %s (%d bytes of data), the file holds %d"
                        % (path, "x".join(map(str, dims)), need, len(raw) - head))
    return np.frombuffer(raw, dtype=dt, offset=head).reshape(dims)


def _idx_path(directory, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    return os.path.join(directory, stem + ".gz")


def load_fashion_mnist(directory):
    """Fashion-MNIST's four IDX files in `directory`: (x_train, y_train, x_test, y_test),
    images as float [N,1,28,28] in [0,1], labels int64."""
    if not os.path.isdir(directory):
        raise DataError("%s: no such directory (Fashion-MNIST: install the package "
                        "dataset-fashion-mnist, scripts/install_deps.sh)" % directory)
    out = []
    for split in ("train", "test"):
        ipath, lpath = (_idx_path(directory, stem) for stem in FASHION_MNIST_FILES[split])
        images, labels = read_idx(ipath), read_idx(lpath)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError("%s: expected uint8 images [N,H,W], got %s %s"
                            % (ipath, images.dtype, "x".join(map(str, images.shape))))
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError("%s: expected %d labels, got shape %s"
                            % (lpath, len(images), "x".join(map(str, labels.shape))))
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError("%s: labels must lie in 0..9" % lpath)
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1).contiguous()
        out += [x, torch.from_numpy(labels.astype(np.int64))]
    return tuple(out)


def load_data(dataset_dir, split_seed, test_fraction, train_images, test_images,
              dataset=None):
    """Return (name, x_train, y_train, x_test, y_test, mean, std); images in [0,1], [N,C,H,W]:
    digits [N,3,32,32], Fashion-MNIST [N,3,28,28] (grey in 3 channels), CIFAR-10 [N,3,32,32].

    dataset: "digits", "fashion-mnist" or "cifar10"; None means CIFAR-10 when dataset_dir is
    given, digits otherwise.
    """
    if dataset is None:
        dataset = "digits" if dataset_dir is None else "cifar10"
    if dataset not in DATASETS:
        raise DataError("unknown data set %r (one of %s)" % (dataset, ", ".join(DATASETS)))
    if dataset == "fashion-mnist":
        x_tr, y_tr, x_te, y_te = load_fashion_mnist(dataset_dir or FASHION_MNIST_DIR)
        m, sd = float(x_tr.mean()), float(x_tr.std())
        # grey replicated to 3 channels (as for digits): the simulator's built-in ResNet-18 takes
        # 3 input channels, so a trace of this network replays as it is
        x_tr = x_tr.expand(-1, 3, -1, -1).contiguous()
        x_te = x_te.expand(-1, 3, -1, -1).contiguous()
        mean, std = (m, m, m), (sd, sd, sd)
        name = "fashion-mnist"
    elif dataset == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        d = load_digits()
        idx = np.arange(len(d.target))
        tr, te = train_test_split(idx, test_size=test_fraction, random_state=split_seed,
                                  stratify=d.target)
        x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        x = x.clamp(0.0, 1.0).repeat(1, 3, 1, 1).contiguous()
        y = torch.from_numpy(d.target.astype(np.int64))
        x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[te], y[te]
        m = float(x_tr.mean())
        sd = float(x_tr.std())
        mean, std = (m, m, m), (sd, sd, sd)
        name = "digits"
    else:
        import torchvision
        if dataset_dir is None:
            raise DataError("cifar10 needs --dataset-dir (a local CIFAR-10 copy)")
        if not os.path.isdir(dataset_dir):
            raise DataError("--dataset-dir %s: no such directory" % dataset_dir)
        try:
            tr = torchvision.datasets.CIFAR10(root=dataset_dir, train=True, download=False)
            te = torchvision.datasets.CIFAR10(root=dataset_dir, train=False, download=False)
        except RuntimeError as e:
            raise DataError("--dataset-dir %s: no CIFAR-10 (python version, directory "
                            "cifar-10-batches-py) found there: %s" % (dataset_dir, e))

        def tensors(ds):
            xx = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).float() / 255.0
            return xx.contiguous(), torch.tensor(ds.targets, dtype=torch.int64)

        x_tr, y_tr = tensors(tr)
        x_te, y_te = tensors(te)
        mean, std = CIFAR_MEAN, CIFAR_STD
        name = "cifar10"
    g = torch.Generator().manual_seed(split_seed)
    if train_images:
        sel = torch.randperm(len(y_tr), generator=g)[:train_images]
        x_tr, y_tr = x_tr[sel], y_tr[sel]
    if test_images:
        sel = torch.randperm(len(y_te), generator=g)[:test_images]
        x_te, y_te = x_te[sel], y_te[sel]
    return name, x_tr, y_tr, x_te, y_te, mean, std


def augment(x, gen, pad, flip):
    """Random translation by up to `pad` pixels (zero fill) and optional horizontal flip."""
    n, _, h, w = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
        x = torch.stack([xp[i, :, offs[i, 0]:offs[i, 0] + h, offs[i, 1]:offs[i, 1] + w]
                         for i in range(n)])
    if flip:
        f = torch.rand(n, generator=gen) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x


def normalize(x, mean, std):
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x - m) / s


@torch.inference_mode()
def evaluate(model, x, y, mean, std, batch=100):
    # batches of 100: on one CPU thread, batches of 500 took 5-7x more CPU time per image
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        out = model(normalize(x[i:i + batch], mean, std))
        correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return correct / max(1, len(y))
