"""PyTorch side of the NaN check (run by tests/torch.sh with Debian's /usr/bin/python3,
which sees python3-torch). For every case tests/nan_torch.c wrote, rebuilds the net from
its safetensors file (with tests/interop_torch.py's reader), runs the forward and the
backward in PyTorch on the same inputs and compares outputs, input gradients, parameter
gradients and buffers with nn.h's: NaN where PyTorch has NaN, each infinity with its
sign, the finite values within float rounding. Losses and argmax likewise. Prints a FAIL
line per case that differs and "nan_torch: N passed, N failed"."""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_torch import build, read_safetensors  # noqa: E402


def load(folder, case, array):
    return np.fromfile(f"{folder}/{case}.{array}.f32", dtype=np.float32)


def differences(what, ours, theirs, rtol=1e-4):
    """Where ours and theirs (flat float32) disagree: NaN, +-inf, then finite values."""
    ours = np.asarray(ours, dtype=np.float32).ravel()
    theirs = np.asarray(theirs, dtype=np.float32).ravel()
    if ours.shape != theirs.shape:
        return [f"{what}: {ours.size} values, PyTorch {theirs.size}"]
    out = []
    for label, o, t in (("NaN", np.isnan(ours), np.isnan(theirs)),
                        ("+inf", ours == np.inf, theirs == np.inf),
                        ("-inf", ours == -np.inf, theirs == -np.inf)):
        bad = np.nonzero(o != t)[0]
        if bad.size:
            out.append(f"{what}: {label} differs at {bad[:8].tolist()} (nn.h {ours[bad[:4]].tolist()}, "
                       f"PyTorch {theirs[bad[:4]].tolist()})")
    fin = np.isfinite(ours) & np.isfinite(theirs)
    if fin.any():
        scale = 1.0 + np.abs(theirs[fin]).max()
        err = np.abs(ours[fin].astype(np.float64) - theirs[fin])
        tol = 1e-5 * scale + rtol * np.abs(theirs[fin])
        if (err > tol).any():
            i = int(np.argmax(err - tol))
            out.append(f"{what}: finite values differ by up to {err.max():.3g} "
                       f"(nn.h {ours[fin][i]}, PyTorch {theirs[fin][i]})")
    return out


def net_case(folder, case, n, training):
    meta, state = read_safetensors(f"{folder}/{case}.safetensors")
    model = build(meta)
    model.load_state_dict(state, strict=True)
    model.train(bool(training))
    shape = [int(v) for v in meta["input"].split(",")]
    x = torch.from_numpy(load(folder, case, "x")).reshape(n, *shape).requires_grad_(True)
    dy_flat = torch.from_numpy(load(folder, case, "dy"))
    if os.path.exists(f"{folder}/{case}.mask.f32"):   # dropout in training: nn.h's mask
        mask = torch.from_numpy(load(folder, case, "mask")).reshape(x.shape)
        y = x * mask
    else:
        y = model(x)
    y.backward(dy_flat.reshape(y.shape))
    out = differences("output", load(folder, case, "y"), y.detach().numpy())
    out += differences("input gradient", load(folder, case, "dx"), x.grad.numpy())
    for name, p in model.named_parameters():
        out += differences(f"gradient of {name}", load(folder, case, f"grad.{name}"), p.grad.numpy())
    for name, b in model.named_buffers():
        if b.dtype == torch.float32:
            out += differences(f"buffer {name}", load(folder, case, f"buf.{name}"), b.numpy())
    return out


def loss_case(folder, case, kind, n, classes):
    z = torch.from_numpy(load(folder, case, "z")).reshape(n, classes).requires_grad_(True)
    t = torch.from_numpy(load(folder, case, "t"))
    if kind == "ce":
        loss = F.cross_entropy(z, t.long())
    elif kind == "soft":
        loss = F.cross_entropy(z, t.reshape(n, classes))
    elif kind in ("mse", "mse_sum"):
        loss = F.mse_loss(z, t.reshape(n, classes), reduction="sum" if kind == "mse_sum" else "mean")
    elif kind == "bce":
        loss = F.binary_cross_entropy(z, t.reshape(n, classes))
    else:
        loss = F.binary_cross_entropy_with_logits(z, t.reshape(n, classes))
    loss.backward()
    return (differences("loss", load(folder, case, "loss"), loss.detach().numpy())
            + differences("gradient", load(folder, case, "grad"), z.grad.numpy()))


def main(folder):
    passed = failed = 0
    for line in open(f"{folder}/cases.txt"):
        mode, case, *rest = line.split()
        if mode == "net":
            out = net_case(folder, case, int(rest[0]), int(rest[1]))
        elif mode == "loss":
            out = loss_case(folder, case, rest[0], int(rest[1]), int(rest[2]))
        else:
            z = torch.from_numpy(load(folder, case, "z")).reshape(int(rest[0]), int(rest[1]))
            out = differences("argmax", load(folder, case, "got"), torch.argmax(z, dim=1).float().numpy())
        if out:
            failed += 1
            print(f"FAIL {case}: " + "; ".join(out))
        else:
            passed += 1
    print(f"nan_torch: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
