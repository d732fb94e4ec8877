"""PyTorch side of tests/models_torch.sh: torchvision's resnet18(num_classes=10) (the
ImageNet stem at 224 x 224 and the CIFAR variant, conv1 a 3x3 / stride 1 / pad 1 conv and
no max-pool, at 32 x 32), mobilenet_v2(num_classes=10) at 224 x 224 and the VGG ConvNet
of examples/models.h at 32 x 32. For each: random weights and random BatchNorm
statistics, saved as a safetensors state_dict (num_batches_tracked as I64), brought over
with `nn convert`, run on a random batch of 2 with `nn run` (.npy in and out): nn.h's
logits must be PyTorch's eval logits within 1e-4 relative, max |a - b| / max |b|. The
other way: the nn.h model file that `nn convert` wrote, and one that nn.h trained three
SGD steps (tests/models_train.c, 3 x 32 x 32 inputs, BatchNorm statistics and
num_batches_tracked its own), load into a fresh torchvision model with
load_state_dict(strict=True) and give nn.h's logits. And `nn convert` is strict: a
tensor missing, one too many or misshapen is refused, naming it.
    Usage: models_torch.py DIR NN TRAIN [ARCH...]   (NN: build/nn, TRAIN: models_train)
           models_torch.py --selftest DIR      (the PyTorch side alone: the safetensors
                                                writer and reader round trip, strictly)
Prints one "PASS"/"FAIL" line per check and "models_torch: N passed, N failed"."""
import os
import re
import subprocess
import sys

import numpy as np
import torch
import torchvision
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_torch import read_safetensors, write_safetensors  # noqa: E402

TOLERANCE = 1e-4
ARCHS = {   # name: input size
    "resnet18": 224,
    "resnet18_cifar": 32,
    "mobilenet_v2": 224,
    "vgg_convnet": 32,
}


def vgg_convnet():
    """examples/models.h's vgg_convnet as the nn.Sequential its state_dict names come from."""
    mods, c = [], 3
    for widths in ((64,), (128,), (256, 256), (512, 512), (512, 512)):
        for w in widths:
            mods += [nn.Conv2d(c, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        mods.append(nn.MaxPool2d(3, 2, 1))
    mods += [nn.AvgPool2d(1, 1, 0), nn.Flatten(), nn.Linear(512, 10)]
    return nn.Sequential(*mods)


def make(arch):
    if arch == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(num_classes=10)
    if arch == "vgg_convnet":
        return vgg_convnet()
    model = torchvision.models.resnet18(num_classes=10)
    if arch == "resnet18_cifar":
        model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    return model


def randomise(model, gen):
    """Random weights (torchvision's own init, then every BatchNorm's weight, bias and
    running statistics drawn too, the variance positive)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.2, generator=gen)
                m.running_mean.normal_(0.0, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.05, generator=gen)
                m.bias.normal_(0.0, 0.05, generator=gen)


def relative(ours, theirs):
    """max |a - b| / max |b|"""
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


class Counter:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        print(("PASS " if ok else "FAIL ") + what, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1

    def end(self):
        print(f"models_torch: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def run(tool, *args):
    proc = subprocess.run([tool, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {os.path.basename(tool)} {' '.join(args)}: status {proc.returncode}: {proc.stderr.strip()}")
    return proc.returncode == 0


def one(arch, folder, tool, count):
    size = ARCHS[arch]
    gen = torch.Generator().manual_seed(sum(map(ord, arch)))
    torch.manual_seed(sum(map(ord, arch)))
    model = make(arch)
    randomise(model, gen)
    model.eval()
    base = os.path.join(folder, arch)
    write_safetensors(f"{base}.torch.safetensors", model.state_dict(), {"format": "pt"})
    x = torch.randn(2, 3, size, size, generator=gen)
    np.save(f"{base}.x.npy", x.numpy().astype("<f4"))
    with torch.no_grad():
        theirs = model(x).numpy()
    ok = run(tool, "convert", "--arch", arch, "--classes", "10", f"{base}.torch.safetensors",
             f"{base}.nn.safetensors") and \
        run(tool, "run", f"{base}.nn.safetensors", f"{base}.x.npy", f"{base}.y.npy", "--batch", "2")
    if not ok:
        count.check(False, f"{arch}: nn convert + nn run")
        count.check(False, f"{arch}: nn.h's file in torchvision (no file)")
        return
    info = subprocess.run([tool, "info", f"{base}.nn.safetensors"], capture_output=True, text=True).stdout
    listed = [(name, [int(d) for d in dims.split("x")])
              for name, dims in re.findall(r" ([A-Za-z0-9_.]+)\(([0-9x]+)\)", info)]
    want = [(k, list(v.shape)) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    diff = next(((a, b) for a, b in zip(listed + [None] * len(want), want) if a != b), None)
    count.check(listed == want, f"{arch}: nn info lists torchvision's {len(want)} tensors (names, shapes, order)"
                + (f"; first difference: nn.h {diff[0]}, torchvision {diff[1]}" if diff else ""))
    ours = np.load(f"{base}.y.npy")
    err = relative(ours, theirs) if ours.shape == theirs.shape else float("inf")
    count.check(err <= TOLERANCE, f"{arch} {size}x{size}: nn run vs PyTorch eval logits {ours.shape}: "
                f"max|a-b|/max|b| = {err:.3g} (max|b| {np.abs(theirs).max():.3g})")
    # The other way: nn.h's file, strictly, into a fresh model with other weights.
    _, state = read_safetensors(f"{base}.nn.safetensors")
    torch.manual_seed(1)
    fresh = make(arch)
    try:
        fresh.load_state_dict(state, strict=True)
    except RuntimeError as e:
        count.check(False, f"{arch}: nn.h's file in torchvision: load_state_dict(strict=True): {e}")
        return
    fresh.eval()
    with torch.no_grad():
        back = fresh(x).numpy()
    err = relative(back, ours)
    count.check(err <= TOLERANCE, f"{arch}: nn.h's model file in torchvision (strict): logits vs nn.h's: "
                f"max|a-b|/max|b| = {err:.3g}")


def strict(arch, folder, tool, count):
    """nn convert refuses a state_dict with a tensor missing, one too many or one of
    another shape, naming it."""
    model = make(arch)
    sd = model.state_dict()
    last_var = [k for k in sd if k.endswith("running_var")][-1]
    first = next(iter(sd))
    cases = [({k: v for k, v in sd.items() if k != last_var}, f"tensor '{last_var}' is missing"),
             (dict(sd, **{"extra.weight": torch.zeros(3)}), "tensor 'extra.weight' does not belong"),
             (dict(sd, **{first: torch.zeros(*sd[first].shape[:-1], sd[first].shape[-1] + 1)}),
              f"tensor '{first}' has shape")]
    path = os.path.join(folder, f"{arch}.damaged.safetensors")
    out = os.path.join(folder, f"{arch}.damaged_nn.safetensors")
    for state, error in cases:
        write_safetensors(path, state, {"format": "pt"})
        if os.path.exists(out):
            os.remove(out)
        proc = subprocess.run([tool, "convert", "--arch", arch, path, out], capture_output=True, text=True)
        count.check(proc.returncode == 1 and error in proc.stderr and not os.path.exists(out),
                    f"{arch}: nn convert refuses a damaged state_dict ({error}): status {proc.returncode}, "
                    f"{proc.stderr.strip()}")


def trained(arch, folder, prog, count):
    base = os.path.join(folder, arch)
    if not run(prog, arch, folder):
        count.check(False, f"{arch}: trained by nn.h (models_train failed)")
        return
    _, state = read_safetensors(f"{base}.trained.safetensors")
    model = make(arch)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        count.check(False, f"{arch}: trained by nn.h, load_state_dict(strict=True): {e}")
        return
    model.eval()
    x = torch.from_numpy(np.load(f"{base}.trained_x.npy"))
    ours = np.load(f"{base}.trained_y.npy")
    with torch.no_grad():
        theirs = model(x).numpy()
        exact = model.double()(x.double()).numpy()
    err = relative(ours, theirs)
    # A net trained three steps on four images has eval-mode BatchNorm statistics far
    # from its activations' and small logits, so float32 itself strays: then nn.h must be
    # as close to the float64 result as PyTorch's float32 is (within 3x).
    ours_exact, theirs_exact = relative(ours, exact), relative(theirs, exact)
    count.check(err <= TOLERANCE or ours_exact <= 3 * theirs_exact,
                f"{arch}: trained 3 steps by nn.h, in torchvision (strict): eval logits "
                f"max|a-b|/max|b| = {err:.3g}; against float64: nn.h {ours_exact:.3g}, PyTorch float32 "
                f"{theirs_exact:.3g}")


def selftest(folder):
    """The PyTorch side alone: each model's state_dict written and read back is the same
    tensors (names, dtypes, values) and loads strictly."""
    count = Counter()
    gen = torch.Generator().manual_seed(0)
    for arch in ARCHS:
        model = make(arch)
        randomise(model, gen)
        path = os.path.join(folder, f"{arch}.selftest.safetensors")
        write_safetensors(path, model.state_dict(), {"format": "pt"})
        _, state = read_safetensors(path)
        want = model.state_dict()
        same = list(state) == list(want) and all(
            state[k].dtype == want[k].dtype and torch.equal(state[k], want[k]) for k in want)
        fresh = make(arch)
        try:
            fresh.load_state_dict(state, strict=True)
            loaded = all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), want.values()))
        except RuntimeError:
            loaded = False
        count.check(same and loaded, f"{arch}: safetensors round trip of {len(want)} tensors, strict load")
    return count.end()


def main(argv):
    if len(argv) >= 2 and argv[0] == "--selftest":
        return selftest(argv[1])
    if len(argv) < 3:
        print(__doc__)
        return 2
    folder, tool, prog, archs = argv[0], argv[1], argv[2], argv[3:] or list(ARCHS)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    count = Counter()
    for arch in archs:
        if arch not in ARCHS:
            print(f"unknown architecture {arch}")
            return 2
        one(arch, folder, tool, count)
        strict(arch, folder, tool, count)
        trained(arch, folder, prog, count)
    return count.end()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
