"""nn.h's int8 quantization (nn_quantize through `nn quantize`) against PyTorch's eager-mode
post-training static quantization (torch.ao.quantization, engine onednn) of the same float
weights on the same calibration images, with the same definitions: activations quint8 per
tensor affine from MinMaxObserver(reduce_range=True: 0..127), weights qint8 per channel
symmetric from PerChannelMinMaxObserver(quant_min=-127, quant_max=127: scale = max|w| / 127),
BatchNorm folded and ReLU fused by fuse_modules.

  quantize_torch.py MODEL CIFAR_DIR TOOL FOLDER [--count N] [--test M]

MODEL is an nn.h float model file (nn.Sequential names); the first N images of
CIFAR_DIR/data_batch_1.bin calibrate both sides, preprocessed as MODEL's metadata says, and
M images spread over test_batch.bin (every 10000/M-th) are classified by nn.h float32 (`nn run`), nn.h int8 and
PyTorch int8. Criteria (each a test; "quantize_torch: N passed, N failed" at the end):
  - per layer, the quantization parameters are PyTorch's: the input's and every output's
    scale within 1e-5 relative and zero point within 1 (the observers see the same float
    activations, up to float rounding in the two float nets), the int8 weights equal in
    >= 99.9% of the places (BatchNorm folding in float may move a value sitting on a .5 by
    one step), the weight scales within 1e-5 relative;
  - the logits: nn.h dequantizes the last layer's int32 sums while PyTorch requantizes them
    to its output's 7-bit scale first, and the two requantize with different roundings
    (fixed-point half away from zero vs onednn's float), so single levels differ inside the
    net by one: the mean |logit difference| must be within 1.5 of PyTorch's output steps;
    the top-1 predictions agree on >= 99% of the samples that are decided (PyTorch's top two
    logits not tied by its requantization, nn.h's top two at least one such step apart; on
    E1's MLP every disagreement was such a tie) and on >= 90% of all; the int8 accuracies of
    the two within 0.5 points (nn.h's and PyTorch's float32 too are printed).
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
from torch.ao.quantization import (DeQuantStub, MinMaxObserver, PerChannelMinMaxObserver, QConfig,
                                   QuantStub, convert, fuse_modules, prepare)

DTYPES = {"F32": np.float32, "I64": np.int64, "I32": np.int32, "I8": np.int8}


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    state = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        state[name] = np.frombuffer(data[b:e], dtype=DTYPES[t["dtype"]]).reshape(t["shape"]).copy()
    return meta, state


def write_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


def cifar(path, count, spread=False):
    """The first count records, or with spread every (n / count)-th (test_batch.bin as
    packed from the image folders is sorted by class)."""
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    raw = raw[::max(1, len(raw) // count)][:count] if spread else raw[:count]
    return raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32), raw[:, 0].astype(np.int64)


def preprocess(meta, pixels):
    kind = meta.get("preprocess", "none")
    scale = float(meta.get("preprocess_scale", "1"))
    if kind == "none":
        return pixels
    mean = np.array([float(v) for v in meta["preprocess_mean"].split(",")], dtype=np.float32)
    if kind == "mean_image":
        return pixels * scale - mean.reshape(pixels.shape[1:])
    std = np.array([float(v) for v in meta["preprocess_std"].split(",")], dtype=np.float32)
    return (pixels * scale - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)


def parse_layer(text):
    parts = text.split()
    opts = dict(p.split("=", 1) for p in parts[1:])
    return parts[0], opts


def build(meta):
    """The nn.Sequential of the layer text, named as nn.h names its parameters."""
    c, h, w = (int(v) for v in meta["input"].split(","))
    x = torch.zeros(1, c, h, w)
    mods = []
    for text in meta["layers"].split(";"):
        kind, o = parse_layer(text)
        gi = lambda k, d=0: int(o.get(k, d))  # noqa: E731
        if kind == "Conv2d":
            k = gi("kernel")
            m = nn.Conv2d(x.shape[1], gi("out"), (k, gi("kernel_w", k)), (gi("stride", 1), gi("stride_w", gi("stride", 1))),
                          (gi("pad"), gi("pad_w", gi("pad"))), (gi("dilation", 1), gi("dilation_w", gi("dilation", 1))),
                          gi("groups", 1), bias=not gi("no_bias"))
        elif kind == "Linear":
            m = nn.Linear(x.shape[1], gi("out"), bias=not gi("no_bias"))
        elif kind == "BatchNorm":
            m = (nn.BatchNorm2d if x.dim() == 4 else nn.BatchNorm1d)(x.shape[1], eps=float(o.get("eps", 1e-5)))
        elif kind == "ReLU":
            m = nn.ReLU()
        elif kind == "LeakyReLU":
            m = nn.LeakyReLU(float(o.get("alpha", 0.0)))
        elif kind == "Tanh":
            m = nn.Tanh()
        elif kind == "Sigmoid":
            m = nn.Sigmoid()
        elif kind in ("MaxPool2d", "AvgPool2d"):
            k = gi("kernel")
            args = ((k, gi("kernel_w", k)), (gi("stride", k), gi("stride_w", gi("stride", k))), (gi("pad"), gi("pad_w", gi("pad"))))
            m = nn.MaxPool2d(*args, ceil_mode=bool(gi("ceil_mode"))) if kind == "MaxPool2d" else \
                nn.AvgPool2d(*args, ceil_mode=bool(gi("ceil_mode")), count_include_pad=not gi("exclude_pad"))
        elif kind == "GlobalAvgPool":
            m = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif kind == "Flatten":
            m = nn.Flatten()
        elif kind == "Dropout":
            m = nn.Dropout(float(o.get("alpha", 0.5)))
        else:
            raise SystemExit(f"quantize_torch: layer kind {kind} is not handled here")
        m.eval()
        with torch.no_grad():
            x = m(x)
        mods.append(m)
    return nn.Sequential(*mods)


class Quantized(nn.Module):
    def __init__(self, seq):
        super().__init__()
        self.quant, self.seq, self.dequant = QuantStub(), seq, DeQuantStub()

    def forward(self, x):
        return self.dequant(self.seq(self.quant(x)))


def fuse_groups(seq):
    groups, i = [], 0
    while i < len(seq):
        if isinstance(seq[i], (nn.Conv2d, nn.Linear)):
            g = [str(i)]
            if i + 1 < len(seq) and isinstance(seq[i + 1], (nn.BatchNorm1d, nn.BatchNorm2d)):
                g.append(str(i + 1))
            if i + len(g) < len(seq) and isinstance(seq[i + len(g)], nn.ReLU):
                g.append(str(i + len(g)))
            if len(g) > 1:
                groups.append(g)
            i += len(g)
        else:
            i += 1
    return groups


class Count:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def main(argv):
    args, count, tests = [], 500, 1000
    i = 0
    while i < len(argv):
        if argv[i] == "--count":
            count, i = int(argv[i + 1]), i + 2
        elif argv[i] == "--test":
            tests, i = int(argv[i + 1]), i + 2
        else:
            args.append(argv[i])
            i += 1
    model_path, data_dir, tool, folder = args
    os.makedirs(folder, exist_ok=True)
    res = Count()
    meta, state = read_safetensors(model_path)
    qpath = os.path.join(folder, "int8.safetensors")
    subprocess.run([tool, "quantize", model_path, data_dir, qpath, "--count", str(count)], check=True)
    qmeta, qstate = read_safetensors(qpath)
    cal = preprocess(meta, cifar(os.path.join(data_dir, "data_batch_1.bin"), count)[0])
    px, labels = cifar(os.path.join(data_dir, "test_batch.bin"), tests, spread=True)
    x = preprocess(meta, px)
    xpath = os.path.join(folder, "x.npy")
    write_npy(xpath, x)
    for name, path in (("float", model_path), ("int8", qpath)):
        subprocess.run([tool, "run", path, xpath, os.path.join(folder, f"{name}.npy"), "--batch", "50",
                        "--threads", "1"], check=True)
    nn_float = np.load(os.path.join(folder, "float.npy"))
    nn_int8 = np.load(os.path.join(folder, "int8.npy"))

    torch.backends.quantized.engine = "onednn"
    torch.set_num_threads(1)
    seq = build(meta)
    seq.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    model = Quantized(seq).eval()
    with torch.no_grad():
        torch_float = model(torch.from_numpy(x)).numpy()
    if fuse_groups(model.seq):
        fuse_modules(model.seq, fuse_groups(model.seq), inplace=True)
    model.qconfig = QConfig(
        activation=MinMaxObserver.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=True),
        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                                  quant_min=-127, quant_max=127))
    prepare(model, inplace=True)
    with torch.no_grad():
        for b in range(0, count, 100):
            model(torch.from_numpy(cal[b:b + 100]))
    convert(model, inplace=True)
    with torch.no_grad():
        torch_int8 = np.concatenate([model(torch.from_numpy(x[b:b + 100])).numpy() for b in range(0, tests, 100)])

    # Quantization parameters, layer by layer.
    def rel(a, b):
        return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) /
                            np.maximum(np.abs(np.asarray(b, np.float64)), 1e-30)))

    s_in, z_in = float(model.quant.scale), int(model.quant.zero_point)
    res.check(rel(qstate["input.scale"], s_in) < 1e-5 and abs(int(qstate["input.zero_point"][0]) - z_in) <= 1,
              f"input: scale {qstate['input.scale'][0]:.6g} / {s_in:.6g}, zero point {qstate['input.zero_point'][0]} / {z_in}")
    last_scale = None
    for idx, m in enumerate(model.seq):
        prefix = str(idx)
        if f"{prefix}.weight" in qstate:
            wq = m.weight()
            ours = qstate[f"{prefix}.weight"]
            theirs = wq.int_repr().numpy().reshape(ours.shape)
            equal = float(np.mean(ours == theirs))
            srel = rel(qstate[f"{prefix}.weight_scale"], wq.q_per_channel_scales().numpy())
            res.check(equal >= 0.999 and srel < 1e-5 and np.max(np.abs(ours.astype(int) - theirs)) <= 1,
                      f"layer {idx} ({type(m).__name__}): int8 weights equal in {100 * equal:.3f}% (others by 1), "
                      f"weight scales within {srel:.2g} relative")
        if f"{prefix}.output_scale" in qstate and not hasattr(m, "scale"):
            print(f"     layer {idx} ({type(m).__name__}): PyTorch keeps it float on quantized tensors "
                  f"(fixed output parameters), nn.h calibrates a table: not compared")
        elif f"{prefix}.output_scale" in qstate:
            so, zo = float(qstate[f"{prefix}.output_scale"][0]), int(qstate[f"{prefix}.output_zero_point"][0])
            res.check(rel(so, float(m.scale)) < 1e-5 and abs(zo - int(m.zero_point)) <= 1,
                      f"layer {idx} output: scale {so:.6g} / {float(m.scale):.6g}, zero point {zo} / {int(m.zero_point)}")
        if hasattr(m, "scale"):
            last_scale = float(m.scale)

    # Logits and predictions.
    diff = np.abs(nn_int8 - torch_int8)
    steps = diff.mean() / last_scale
    same = np.argmax(nn_int8, 1) == np.argmax(torch_int8, 1)
    agree = float(np.mean(same))
    # PyTorch requantizes the logits to its output's 7-bit scale, which ties close ones
    # (argmax then takes the first); nn.h keeps them apart. Decided: no tie at PyTorch's top
    # and nn.h's top two at least one PyTorch step apart.
    ts, ns = np.sort(torch_int8, 1), np.sort(nn_int8, 1)
    decided = (ts[:, -1] > ts[:, -2]) & (ns[:, -1] - ns[:, -2] >= last_scale)
    agree_decided = float(np.mean(same[decided])) if decided.any() else 1.0
    print(f"logits: nn.h int8 vs PyTorch int8: mean |difference| {diff.mean():.4f} = {steps:.2f} output steps "
          f"({last_scale:.4g}), max {diff.max():.4f}; nn.h float32 vs PyTorch float32: max "
          f"{np.abs(nn_float - torch_float).max():.2e}")
    res.check(np.abs(nn_float - torch_float).max() <= 1e-3 * max(1.0, np.abs(torch_float).max()),
              "the float nets agree (the same weights)")
    res.check(steps <= 1.5, f"mean logit difference {steps:.2f} steps of PyTorch's output, at most 1.5")
    res.check(agree_decided >= 0.99 and agree >= 0.9,
              f"top-1 agreement of nn.h int8 and PyTorch int8: {100 * agree:.1f}% of all, "
              f"{100 * agree_decided:.2f}% of the {int(decided.sum())} decided (>= 99%; the others: a tie in "
              f"PyTorch's 7-bit logits or nn.h's top two within one of its steps)")
    acc = {name: float(np.mean(np.argmax(v, 1) == labels)) for name, v in
           (("nn_float32", nn_float), ("nn_int8", nn_int8), ("pytorch_float32", torch_float), ("pytorch_int8", torch_int8))}
    print("accuracy on %d test images: " % tests + " ".join(f"{k}={v:.4f}" for k, v in acc.items()))
    res.check(abs(acc["nn_int8"] - acc["pytorch_int8"]) <= 0.005 or acc["pytorch_float32"] < 0.2,
              "int8 accuracies within 0.5 points (or an untrained net)")
    print(f"size float32={os.path.getsize(model_path)} int8={os.path.getsize(qpath)} "
          f"ratio={os.path.getsize(qpath) / os.path.getsize(model_path):.3f}")
    print(f"quantize_torch: {res.passed} passed, {res.failed} failed")
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
