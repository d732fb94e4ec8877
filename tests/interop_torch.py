"""PyTorch side of the interoperability check (run by tests/interop.sh with Debian's
/usr/bin/python3, which sees python3-torch). Reads nn.h's safetensors file by hand (the
format is an 8-byte length, a JSON header, raw little-endian data), rebuilds the same
nn.Sequential from the "layers" metadata, loads the state dict strictly and compares
logits; then saves a PyTorch-trained model the same way for nn.h to load."""
import json
import struct
import sys

import numpy as np
import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def parse_layers(text):
    for item in text.split(";"):
        name, *opts = item.split(" ")
        yield name, {k: float(v) for k, v in (o.split("=") for o in opts)}


def build(meta):
    shape = [int(v) for v in meta["input"].split(",")]
    x = torch.zeros(1, *shape)
    mods = []
    for name, o in parse_layers(meta["layers"]):
        k, s, p = int(o.get("kernel", 0)), int(o.get("stride", 0)), int(o.get("pad", 0))
        k = (k, int(o.get("kernel_w", k)))   # a "_w" key sets the width's where it differs
        s, p = (s, int(o.get("stride_w", s))), (p, int(o.get("pad_w", p)))
        dil = int(o.get("dilation", 1))
        dil = (dil, int(o.get("dilation_w", dil)))
        bias = not o.get("no_bias", 0)
        ceil = bool(o.get("ceil_mode", 0))
        if name == "Linear":
            m = nn.Linear(x.shape[1], int(o["out"]), bias=bias)
        elif name == "Conv2d":
            m = nn.Conv2d(x.shape[1], int(o["out"]), k, (s[0] or 1, s[1] or 1), p, dil,
                          int(o.get("groups", 1)), bias=bias)
        elif name == "MaxPool2d":
            m = nn.MaxPool2d(k, (s[0] or k[0], s[1] or k[1]), p, ceil_mode=ceil)
        elif name == "AvgPool2d":
            m = nn.AvgPool2d(k, (s[0] or k[0], s[1] or k[1]), p, ceil_mode=ceil,
                             count_include_pad=not o.get("exclude_pad", 0))
        elif name == "GlobalAvgPool":
            m = nn.AdaptiveAvgPool2d(1)
        elif name == "BatchNorm":
            bn = nn.BatchNorm1d if x.dim() == 2 else nn.BatchNorm2d
            m = bn(x.shape[1], eps=o.get("eps") or 1e-5, momentum=o.get("momentum") or 0.1,
                   affine=not o.get("no_affine", 0))
        elif name == "Hardtanh":
            m = nn.Hardtanh(o["min"], o["max"]) if "min" in o else nn.Hardtanh()
        elif name == "ReLU":
            m = nn.ReLU()
        elif name == "LeakyReLU":
            m = nn.LeakyReLU(o.get("alpha", 0.0))
        elif name == "Sigmoid":
            m = nn.Sigmoid()
        elif name == "Tanh":
            m = nn.Tanh()
        elif name == "GELU":
            m = nn.GELU(approximate="tanh" if o.get("approximate") else "none")
        elif name == "Softplus":
            m = nn.Softplus(o.get("alpha") or 1.0, o.get("beta") or 20.0)
        elif name == "Scale":
            m = Scale(o.get("alpha", 0.0))
        elif name == "Dropout":
            m = nn.Dropout(o.get("alpha", 0.0))
        elif name == "Flatten":
            m = nn.Flatten()
        else:
            raise SystemExit(f"unknown layer {name}")
        mods.append(m)
        m.eval()
        with torch.no_grad():
            x = m(x)
    return nn.Sequential(*mods)


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "I64": np.int64}
    state = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
        state[name] = torch.from_numpy(arr.copy())
    return meta, state


def write_safetensors(path, state, meta):
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name, t in state.items():
        arr = t.detach().cpu().contiguous().numpy()
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[arr.dtype]
        blob = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main(folder):
    torch.manual_seed(0)
    meta, state = read_safetensors(f"{folder}/nn.safetensors")
    model = build(meta)
    model.load_state_dict(state, strict=True)
    model.eval()
    shape = [int(v) for v in meta["input"].split(",")]
    x = torch.from_numpy(np.fromfile(f"{folder}/x.f32", dtype=np.float32)).reshape(-1, *shape)
    ours = torch.from_numpy(np.fromfile(f"{folder}/nn_logits.f32", dtype=np.float32)).reshape(x.shape[0], -1)
    with torch.no_grad():
        diff = (model(x) - ours).abs().max().item()
    print(f"nn.h model loaded in PyTorch: max |logit difference| = {diff:.3g}")
    # The other way: train the same architecture in PyTorch a few steps and save it.
    theirs = build(meta)
    opt = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    theirs.train()
    for step in range(5):
        loss = nn.functional.cross_entropy(theirs(x), torch.arange(x.shape[0]) % 10)
        opt.zero_grad()
        loss.backward()
        opt.step()
    theirs.eval()
    with torch.no_grad():
        theirs(x).numpy().astype(np.float32).tofile(f"{folder}/torch_logits.f32")
    write_safetensors(f"{folder}/torch.safetensors", theirs.state_dict(),
                      {"input": meta["input"], "layers": meta["layers"]})
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
