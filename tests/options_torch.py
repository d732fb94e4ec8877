"""PyTorch side of the layer-option check (run by tests/torch.sh with Debian's /usr/bin/python3,
which sees python3-torch). For every case tests/options_torch.c wrote, rebuilds the net from
its safetensors file (tests/interop_torch.py's reader and builder, which maps each option to
PyTorch's argument), runs the forward and the backward in float64 on the same input and
output gradient and compares nn.h's output, input gradient, parameter gradients and float
buffers (running statistics after the forward): NaN where PyTorch has NaN, and
max |nn.h - PyTorch| <= 1e-5 max |PyTorch| per array. Prints a FAIL line per case that
differs and "options_torch: N passed, N failed"."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_torch import build, read_safetensors  # noqa: E402

RTOL = 1e-5


def load(folder, case, array):
    return np.fromfile(f"{folder}/{case}.{array}.f32", dtype=np.float32)


def differences(what, ours, theirs):
    ours = np.asarray(ours, dtype=np.float64).ravel()
    theirs = np.asarray(theirs, dtype=np.float64).ravel()
    if ours.shape != theirs.shape:
        return [f"{what}: {ours.size} values, PyTorch {theirs.size}"]
    bad = np.nonzero(np.isnan(ours) != np.isnan(theirs))[0]
    if bad.size:
        return [f"{what}: NaN differs at {bad[:8].tolist()}"]
    fin = ~np.isnan(theirs)
    if not fin.any():
        return []
    scale = np.abs(theirs[fin]).max()
    err = np.abs(ours[fin] - theirs[fin]).max()
    if err > RTOL * max(scale, 1e-30):
        return [f"{what}: max difference {err:.3g}, {err / max(scale, 1e-30):.3g} of max |PyTorch| {scale:.3g}"]
    return []


def run(folder, case, n, training):
    meta, state = read_safetensors(f"{folder}/{case}.safetensors")
    model = build(meta)
    model.load_state_dict(state, strict=True)
    model.double()
    model.train(bool(training))
    shape = [int(v) for v in meta["input"].split(",")]
    x = torch.from_numpy(load(folder, case, "x").astype(np.float64)).reshape(n, *shape).requires_grad_(True)
    y = model(x)
    y.backward(torch.from_numpy(load(folder, case, "dy").astype(np.float64)).reshape(y.shape))
    out = differences("output", load(folder, case, "y"), y.detach().numpy())
    out += differences("input gradient", load(folder, case, "dx"), x.grad.numpy())
    for name, p in model.named_parameters():
        out += differences(f"gradient of {name}", load(folder, case, f"grad.{name}"), p.grad.numpy())
    for name, b in model.named_buffers():
        if b.dtype == torch.float64:
            out += differences(f"buffer {name}", load(folder, case, f"buf.{name}"), b.numpy())
    return out


def main(folder):
    passed = failed = 0
    for line in open(f"{folder}/cases.txt"):
        case, n, training = line.split()
        try:
            problems = run(folder, case, int(n), int(training))
        except (RuntimeError, ValueError) as e:   # e.g. an output of another shape
            problems = [f"PyTorch refused it: {e}"]
        if problems:
            failed += 1
            print(f"FAIL {case}: " + "; ".join(problems))
        else:
            passed += 1
    print(f"options_torch: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
