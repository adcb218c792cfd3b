"""Training data of the trace generator: scikit-learn's bundled digits (nothing downloaded) or a
local CIFAR-10 copy, the augmentation, normalisation and the accuracy evaluation."""

import os

import numpy as np
import torch
import torch.nn.functional as F

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

# ---------------------------------------------------------------------------------------------
# Data

class DataError(Exception):
    pass


def load_data(dataset_dir, split_seed, test_fraction, train_images, test_images):
    """Return (name, x_train, y_train, x_test, y_test, mean, std); images in [0,1], [N,3,32,32]."""
    if dataset_dir is None:
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


@torch.no_grad()
def evaluate(model, x, y, mean, std, batch=250):
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        out = model(normalize(x[i:i + batch], mean, std))
        correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return correct / max(1, len(y))
