"""PyTorch side of `make bench-speedrun`: examples/speedrun.c's net and recipe (airbench94's)
on the CPU in float32, timed over STEPS training steps of batch 1024 after one warm-up step.
Run with Debian's /usr/bin/python3, which sees python3-torch:

    OMP_NUM_THREADS=T /usr/bin/python3 bench/speedrun_torch.py --steps N --threads T [--data_dir DIR]

Prints one line in build/bench_speedrun's format:
    pytorch steps=N seconds=S epoch_seconds=E images_per_s=I threads=T
with E = S x 48 / N (an epoch: 48 steps of 1024 of the 50,000 training images).
The recipe, as examples/speedrun.c writes it: the whitening 2x2 conv (frozen weights from
the patch covariance of 5,000 training images, trainable bias), GELU, three groups of
conv3x3 -> MaxPool2d(2) -> BatchNorm -> GELU -> conv3x3 -> BatchNorm -> GELU (64, 256, 256),
MaxPool2d(3), Linear 256 -> 10 without bias, x 1/9; BatchNorm eps 1e-12, momentum 0.4, weight
frozen at 1; dirac init; SGD Nesterov 0.85 with airbench94's lr 11.5 and weight decay 0.0153
per 1024 examples on the summed loss, BatchNorm biases at 64x; label smoothing 0.2; the
triangular schedule; Lookahead every 5 steps; alternating flip and 2-pixel reflected
translation on each batch (as airbench94, on tensors)."""
import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def load_train(data_dir):
    xs, ys = [], []
    for i in range(1, 6):
        raw = np.fromfile(os.path.join(data_dir, "data_batch_%d.bin" % i), dtype=np.uint8).reshape(-1, 3073)
        ys.append(raw[:, 0].astype(np.int64))
        xs.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    x = torch.from_numpy(np.concatenate(xs)).float() / 255.0
    return (x - MEAN) / STD, torch.from_numpy(np.concatenate(ys))


def whitening(x, eps=5e-4):
    patches = x.unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, 3, 2, 2).double()
    p = patches.reshape(len(patches), -1)
    cov = p.t() @ p / len(p)
    val, vec = torch.linalg.eigh(cov)
    val, vec = val.flip(0), vec.t().reshape(-1, 3, 2, 2).flip(0)
    w = vec / torch.sqrt(val + eps).view(-1, 1, 1, 1)
    return torch.cat((w, -w)).float()


class BN(nn.BatchNorm2d):
    def __init__(self, c):
        super().__init__(c, eps=1e-12, momentum=0.4)
        self.weight.requires_grad = False


def conv3x3(cin, cout):
    c = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(c.weight[:cin])
    return c


def make_net(x):
    layers = [nn.Conv2d(3, 24, 2, bias=True), nn.GELU()]
    c = 24
    for w in (64, 256, 256):
        layers += [conv3x3(c, w), nn.MaxPool2d(2), BN(w), nn.GELU(), conv3x3(w, w), BN(w), nn.GELU()]
        c = w
    layers += [nn.MaxPool2d(3), nn.Flatten(), nn.Linear(256, 10, bias=False)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        net[0].weight.copy_(whitening(x[:5000]))
        net[0].bias.zero_()
    net[0].weight.requires_grad = False
    return net


def augment(x, epoch, flip_coins):
    # alternating flip: each image's coin, mirrored where coin + epoch is odd
    flip = ((flip_coins + epoch) % 2).bool()
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    # translate by up to 2 pixels with reflection padding
    pad = F.pad(x, (2, 2, 2, 2), mode="reflect")
    n = len(x)
    dy, dx = torch.randint(0, 5, (n,)), torch.randint(0, 5, (n,))
    out = torch.empty_like(x)
    for oy in range(5):
        for ox in range(5):
            sel = ((dy == oy) & (dx == ox)).nonzero().flatten()
            if len(sel):
                out[sel] = pad[sel, :, oy:oy + 32, ox:ox + 32]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data_dir", default="data/cifar-10-batches-bin")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    x, y = load_train(args.data_dir)
    batch, momentum, total = 1024, 0.85, 476
    net = make_net(x)
    ks = 1024 * (1 + 1 / (1 - momentum))
    lr, wd = 11.5 / ks, 0.0153 * batch / ks
    bn_biases = [p for m in net.modules() if isinstance(m, BN) for p in [m.bias]]
    others = [p for p in net.parameters() if p.requires_grad and all(p is not b for b in bn_biases)]
    opt = torch.optim.SGD([dict(params=bn_biases, lr=lr * 64, weight_decay=wd / (lr * 64)),
                           dict(params=others, lr=lr, weight_decay=wd / lr)],
                          momentum=momentum, nesterov=True)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    ema = [t.detach().clone() for t in net.state_dict().values()]
    coins = torch.randint(0, 2, (len(x),))
    perm = torch.randperm(len(x))
    scale = 1.0 / 9.0

    def lr_factor(step):
        warm = int(0.23 * total)
        if step < warm:
            return 0.2 + 0.8 * step / warm
        return 1.0 + (0.07 - 1.0) * (step - warm) / (total - warm)

    t0 = 0.0
    net.train()
    for step in range(args.steps + 1):   # step 0 warms up
        if step == 1:
            t0 = time.perf_counter()
        idx = perm[(step * batch) % (48 * batch):][:batch]
        xb = augment(x[idx], 0, coins[idx])
        for g in opt.param_groups:
            g["lr"] = g["initial_lr"] * lr_factor(step)
        out = net(xb) * scale
        loss = F.cross_entropy(out, y[idx], label_smoothing=0.2, reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 5 == 0:   # Lookahead
            decay = 0.95 ** 5 * ((step + 1) / total) ** 3
            with torch.no_grad():
                for e, t in zip(ema, net.state_dict().values()):
                    if t.dtype.is_floating_point:
                        e.lerp_(t, 1 - decay)
                        t.copy_(e)
    seconds = time.perf_counter() - t0
    print("pytorch steps=%d seconds=%.2f epoch_seconds=%.1f images_per_s=%.1f threads=%d"
          % (args.steps, seconds, seconds * 48 / args.steps, args.steps * batch / seconds, args.threads))
    assert math.isfinite(loss.item())


if __name__ == "__main__":
    main()
