"""PyTorch side of tests/train_torch.sh: training with nn.h is PyTorch-exact.

tests/train_torch.c builds and initialises the CIFAR ResNet-18 (resnet18_cifar,
3 x 32 x 32 inputs) and MobileNetV2 (mobilenet_v2, 3 x 64 x 64, so that its last feature
map is 2 x 2) of examples/models.h with 10 classes, writes the net, and trains it two
steps in training mode (nn_train_step: forward, softmax cross-entropy averaged over the
batch of 8, backward, SGD lr 0.1, momentum 0.9, weight decay 5e-4; the second step reads
the momentum buffer) on two random batches, writing the net after each. Here
torchvision's model loads nn.h's initial file with load_state_dict(strict=True) and
takes the same two steps (torch.optim.SGD over model.parameters(), F.cross_entropy),
once in float32 and once in float64. Checked, per step:
- the loss: nn.h's within 1e-4 of PyTorch's float32 loss, |a - b| / |b|;
- every tensor of the state_dict (parameters, running_mean, running_var), with
  err(a, b) = max |a - b| / max(max |b|, 1e-30) per tensor: nn.h's within 1e-4 of
  PyTorch's float32 tensor, or, where PyTorch's float32 tensor itself strays from the
  float64 one, nn.h's no further from float64 than 3x PyTorch's float32 (a step of a
  deep BatchNorm net in float32 loses digits: a BatchNorm bias gradient is a sum that
  mostly cancels, and after the first step of lr 0.1 from PyTorch's default init the
  second is ill-conditioned). A tensor that is zero in float64 (max |b| <= 1e-12: the
  bias of a BatchNorm that reaches the next BatchNorm only through a linear
  convolution, whose gradient cancels exactly) must be rounding noise in nn.h too
  (max |a| <= 1e-6). The worst tensor is printed;
- num_batches_tracked: all equal to the step, as PyTorch's.
MobileNetV2's Dropout(0.2) before the classifier stays, with nn.h's masks:
classifier.0 becomes x * mask with mask = 1 / (1 - 0.2) = 1.25 where nn.h's Dropout
output of that step is non-zero and 0 where it is zero (a zero input, whose mask is not
known, has the gradient 0 through the ReLU6 before the pooling, so its mask does not
matter); checked: nn.h's kept values are 1.25 times PyTorch's inputs (step 1) and
17-23% of the non-zero inputs are dropped. Its ReLU6 take nn.h's side of the kinks
too: their backward passes the gradient where nn.h's input (train_torch.c's gate file)
is inside (0, 6). Of the 4 million ReLU6 inputs of a step a few lie within float32
rounding of 0 or 6, and one of them on the other side moves a BatchNorm bias by 1%; the
number that PyTorch has on the other side is printed.

Prints "PASS"/"FAIL" lines and ends with "train_torch: N passed, N failed".
    Usage: train_torch.py steps DIR PROG              (PROG: the train_torch program)
           train_torch.py resnet MODEL NN DIR         (MODEL: a model examples/resnet.c
               wrote; it loads strictly into torchvision's CIFAR ResNet-18 and gives the
               eval logits of `NN run` on a random batch, within 1e-4 relative or, as in
               models_torch.py's trained direction, as close to float64 as PyTorch's
               float32 within 3x)"""
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_torch import read_safetensors  # noqa: E402
import models_torch  # noqa: E402
from models_torch import make, relative  # noqa: E402

TOLERANCE = 1e-4
NETS = {"resnet18_cifar": 32, "mobilenet_v2": 64}   # name: input size
LR, MOMENTUM, WEIGHT_DECAY, DROPOUT = 0.1, 0.9, 5e-4, 0.2
SLACK = 3   # where PyTorch's float32 strays from float64, nn.h's may stray 3x as far
ZERO, NOISE = 1e-12, 1e-6   # a tensor zero in exact arithmetic, and its rounding noise


class Masked(nn.Module):
    """Dropout with a given mask (nn.h's): x * mask; keeps its input."""
    def __init__(self):
        super().__init__()
        self.mask = self.input = None

    def forward(self, x):
        self.input = x.detach().double().clone()
        return x * self.mask


class Counter(models_torch.Counter):
    def end(self):
        print(f"train_torch: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


class Gates:
    """nn.h's ReLU6 inputs of a step (train_torch.c's gateSTEP.npy), handed out in
    forward order; flips counts where PyTorch's input is on the other side of 0 or 6."""
    def __init__(self):
        self.data, self.at, self.flips = None, 0, 0

    def take(self, x):
        part = self.data[self.at:self.at + x.numel()].view(x.shape)
        self.at += x.numel()
        self.flips += int((((x > 0) & (x < 6)) != ((part > 0) & (part < 6))).sum())
        return ((part > 0) & (part < 6)).to(x.dtype)


class GatedReLU6Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gate):
        ctx.save_for_backward(gate)
        return x.clamp(0.0, 6.0)

    @staticmethod
    def backward(ctx, dy):
        gate, = ctx.saved_tensors
        return dy * gate, None


class GatedReLU6(nn.Module):
    """ReLU6 whose backward passes the gradient where nn.h's input was inside (0, 6)."""
    def __init__(self, gates):
        super().__init__()
        self.gates = gates

    def forward(self, x):
        return GatedReLU6Function.apply(x, self.gates.take(x.detach()))


def gate_relu6(module, gates):
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU6):
            setattr(module, name, GatedReLU6(gates))
        else:
            gate_relu6(child, gates)


def load(path, model, count, what):
    _, state = read_safetensors(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        count.check(False, f"{what}: load_state_dict(strict=True): {e}")
        return None
    return state


def pytorch(arch, base, dtype):
    """torchvision's model from nn.h's initial file, in dtype, trained the two steps;
    the losses and the state_dict after each step (as float64)."""
    torch.manual_seed(1)
    model = make(arch)
    _, state = read_safetensors(f"{base}.init.safetensors")
    model.load_state_dict(state, strict=True)
    dropout = None
    if arch == "mobilenet_v2":
        assert isinstance(model.classifier[0], nn.Dropout) and model.classifier[0].p == DROPOUT
        dropout = model.classifier[0] = Masked()
        gates = Gates()
        gate_relu6(model, gates)
    model = model.to(dtype)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    losses, states, feats, flips = [], [], [], []
    for step in range(2):
        x = torch.from_numpy(np.load(f"{base}.x{step}.npy")).to(dtype)
        y = torch.from_numpy(np.load(f"{base}.y{step}.npy")).long()
        if dropout is not None:
            kept = torch.from_numpy(np.load(f"{base}.drop{step}.npy"))
            dropout.mask = ((kept != 0).to(dtype) * (1.0 / (1.0 - DROPOUT))).to(dtype)
            gates.data, gates.at, gates.flips = torch.from_numpy(np.load(f"{base}.gate{step}.npy")), 0, 0
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if dropout is not None:
            assert gates.at == gates.data.numel()
            feats.append(dropout.input)
            flips.append((gates.flips, gates.at))
        losses.append(float(loss))
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return losses, states, feats, flips


def steps(arch, folder, prog, count):
    size = NETS[arch]
    base = os.path.join(folder, arch)
    proc = subprocess.run([prog, arch, str(size), folder], capture_output=True, text=True)
    if proc.returncode != 0:
        count.check(False, f"{arch}: the nn.h side: status {proc.returncode}: {proc.stderr.strip()}")
        return
    try:
        loss32, state32, feats, flips = pytorch(arch, base, torch.float32)
        loss64, state64, _, flips64 = pytorch(arch, base, torch.float64)
    except RuntimeError as e:
        count.check(False, f"{arch}: nn.h's initial net in torchvision: {e}")
        return
    ours_loss = np.load(f"{base}.loss.npy")
    for step in range(2):
        if feats:
            kept = np.load(f"{base}.drop{step}.npy").astype(np.float64)
            on = (kept != 0) & (feats[step].numpy() != 0)
            err = relative(kept[on], 1.25 * feats[step].numpy()[on])
            dropped = float((kept[feats[step].numpy() != 0] == 0).mean())
            # the second step's features differ as its gates did (see the flips): its scale is not checked
            count.check((step > 0 or err <= TOLERANCE) and 0.17 <= dropped <= 0.23,
                        f"{arch} step {step + 1}: nn.h's Dropout keeps x * 1.25 (max|a-b|/max|b| = {err:.3g}"
                        f"{' (not checked)' if step else ''}) and drops {100 * dropped:.1f}% of its non-zero "
                        f"inputs (p = {DROPOUT})")
        if flips:
            print(f"  {arch} step {step + 1}: of {flips[step][1]} ReLU6 inputs, {flips[step][0]} (float64: "
                  f"{flips64[step][0]}) on the other side of 0 or 6 than nn.h's; its side taken")
        err = abs(float(ours_loss[step]) - loss32[step]) / abs(loss32[step])
        count.check(err <= TOLERANCE, f"{arch} {size}x{size} step {step + 1}: loss nn.h {ours_loss[step]:.7g}, "
                    f"PyTorch {loss32[step]:.7g} (float64 {loss64[step]:.7g}), |a-b|/|b| = {err:.3g}")
        _, ours = read_safetensors(f"{base}.step{step + 1}.safetensors")
        want = state32[step]
        if list(ours) != list(want):
            count.check(False, f"{arch}: nn.h's file after step {step + 1} has other tensors than torchvision's")
            return
        worst, bad, counters, by32, by64, zero = (-1.0, "", 0, 0), [], [], 0, 0, 0
        for name, b in want.items():
            a = ours[name]
            if name.endswith("num_batches_tracked"):
                counters.append(int(a))
                if int(a) != step + 1 or not torch.equal(a, b):
                    bad.append(f"{name} {int(a)} vs {int(b)}")
                continue
            a, b, c = a.double().numpy(), b.double().numpy(), state64[step][name].numpy()
            if np.abs(c).max() <= ZERO:   # zero in exact arithmetic: rounding noise in both
                zero += 1
                if not np.abs(a).max() <= NOISE:
                    bad.append(f"{name}: max |nn.h| {np.abs(a).max():.3g}, float64 {np.abs(c).max():.3g}")
                continue
            err, err64, theirs64 = relative(a, b), relative(a, c), relative(b, c)
            if err <= TOLERANCE:
                by32 += 1
            elif err64 <= max(TOLERANCE, SLACK * theirs64):
                by64 += 1
            else:
                bad.append(f"{name} {err:.3g} (float64: nn.h {err64:.3g}, PyTorch {theirs64:.3g})")
            if not err <= worst[0]:
                worst = (err, name, err64, theirs64)
        count.check(not bad, f"{arch} step {step + 1}: {len(want) - len(counters)} tensors (parameters, running "
                    f"statistics): {by32} within {TOLERANCE:g} of PyTorch "
                    f"float32, {by64} as close to float64 as PyTorch float32 within {SLACK}x (or within {TOLERANCE:g}); worst vs "
                    f"float32: {worst[1]} {worst[0]:.3g} (vs float64: nn.h {worst[2]:.3g}, PyTorch float32 "
                    f"{worst[3]:.3g}); {zero} zero in float64 (|value| <= {ZERO:g}), nn.h's <= {NOISE:g}; {len(counters)} num_batches_tracked all {sorted(set(counters))}"
                    + (f"; off: {'; '.join(bad[:6])}" + (f" and {len(bad) - 6} more" if len(bad) > 6 else "")
                       if bad else ""))


def resnet_model(path, tool, folder):
    """A model file examples/resnet.c wrote, in torchvision's CIFAR ResNet-18."""
    count = Counter()
    torch.manual_seed(2)
    model = make("resnet18_cifar")
    if load(path, model, count, f"{path} in torchvision's CIFAR ResNet-18") is None:
        return count.end()
    count.check(True, f"{path} (examples/resnet.c): load_state_dict(strict=True) into torchvision's CIFAR ResNet-18")
    model.eval()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 32, 32, generator=gen)   # already preprocessed: `nn run` takes the net's input
    np.save(os.path.join(folder, "resnet.x.npy"), x.numpy().astype("<f4"))
    proc = subprocess.run([tool, "run", path, os.path.join(folder, "resnet.x.npy"),
                           os.path.join(folder, "resnet.y.npy")], capture_output=True, text=True)
    if proc.returncode != 0:
        count.check(False, f"nn run {path}: status {proc.returncode}: {proc.stderr.strip()}")
        return count.end()
    ours = np.load(os.path.join(folder, "resnet.y.npy"))
    with torch.no_grad():
        theirs = model(x).numpy()
        exact = model.double()(x.double()).numpy()
    err = relative(ours, theirs) if ours.shape == theirs.shape else float("inf")
    ours_exact, theirs_exact = relative(ours, exact), relative(theirs, exact)
    count.check(err <= TOLERANCE or ours_exact <= 3 * theirs_exact,
                f"examples/resnet.c's model: eval logits {ours.shape}, nn run vs torchvision: max|a-b|/max|b| = "
                f"{err:.3g}; against float64: nn.h {ours_exact:.3g}, PyTorch float32 {theirs_exact:.3g}")
    return count.end()


def main(argv):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if len(argv) == 3 and argv[0] == "steps":
        count = Counter()
        for arch in NETS:
            steps(arch, argv[1], argv[2], count)
        return count.end()
    if len(argv) == 4 and argv[0] == "resnet":
        return resnet_model(argv[1], argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
