"""PyTorch side of `make bench-embed` (bench/embed.sh): the VGG ConvNet of
examples/models.h (tests/models_torch.py's twin) with the weights of an nn.h model file,
in float32 or quantized to int8 by torch.ao.quantization's post-training static
quantization (engine onednn: QuantStub / DeQuantStub around the net, each Conv2d fused
with its BatchNorm2d and ReLU by fuse_modules, the default onednn qconfig, calibrated on
the first 500 images of data_batch_1.bin preprocessed as the model file says). One case
per process, so that the peak resident memory is the case's own. Run with Debian's
/usr/bin/python3:

    OMP_NUM_THREADS=T /usr/bin/python3 bench/embed_torch.py --model PATH --mode fp32|int8
        [--batch B --threads T --iters N] [--data DIR] [--size] [--accuracy DIR]

Prints bench/embed.c's lines:
    bench pytorch <mode> vgg batch=<b> threads=<t> median=<images/s> best=<images/s> peak_rss_mb=<MB>
    size pytorch <mode> bytes=<torch.save of the state_dict>
    accuracy pytorch <mode> top1=<fraction of the 10,000 test images>"""
import argparse
import io
import os
import resource
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from interop_torch import read_safetensors  # noqa: E402
from models_torch import vgg_convnet  # noqa: E402

CALIBRATION_IMAGES = 500


def read_cifar(path, count=None):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    if count:
        raw = raw[:count]
    return raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32), raw[:, 0].astype(np.int64)


def preprocess(meta, pixels):
    """The model file's preprocessing (docs/FORMAT.md: preprocess, preprocess_scale,
    preprocess_mean, preprocess_std) applied to raw 0..255 pixels."""
    kind = meta.get("preprocess")
    if not kind:
        return pixels
    x = pixels * float(meta.get("preprocess_scale", "1"))
    mean = np.array([float(v) for v in meta["preprocess_mean"].split(",")], dtype=np.float32)
    if kind == "mean_image":
        return x - mean.reshape(3, 32, 32)
    std = np.array([float(v) for v in meta["preprocess_std"].split(",")], dtype=np.float32)
    return (x - mean.reshape(3, 1, 1)) / std.reshape(3, 1, 1)


def load(path):
    meta, state = read_safetensors(path)
    net = vgg_convnet()
    net.load_state_dict(state, strict=True)
    return meta, net.eval()


def quantize(net, calibration):
    """Post-training static quantization (onednn), calibrated on the given inputs."""
    torch.backends.quantized.engine = "onednn"
    names = [str(i) for i, m in enumerate(net) if isinstance(m, nn.Conv2d)]
    torch.ao.quantization.fuse_modules(net, [[c, str(int(c) + 1), str(int(c) + 2)] for c in names], inplace=True)
    model = nn.Sequential(torch.ao.quantization.QuantStub(), net, torch.ao.quantization.DeQuantStub()).eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig("onednn")
    torch.ao.quantization.prepare(model, inplace=True)
    with torch.no_grad():
        for i in range(0, len(calibration), 100):
            model(calibration[i:i + 100])
    torch.ao.quantization.convert(model, inplace=True)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=["fp32", "int8"], default="fp32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=0)
    ap.add_argument("--data", default="data/cifar-10-batches-bin")
    ap.add_argument("--size", action="store_true")
    ap.add_argument("--accuracy")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    meta, net = load(a.model)
    if a.mode == "int8":
        pixels, _ = read_cifar(os.path.join(a.data, "data_batch_1.bin"), CALIBRATION_IMAGES)
        net = quantize(net, torch.from_numpy(preprocess(meta, pixels)))
    if a.size:
        buf = io.BytesIO()
        torch.save(net.state_dict(), buf)
        print(f"size pytorch {a.mode} bytes={buf.tell()}")
        return
    if a.accuracy:
        pixels, labels = read_cifar(os.path.join(a.accuracy, "test_batch.bin"))
        x = torch.from_numpy(preprocess(meta, pixels))
        correct = 0
        with torch.no_grad():
            for i in range(0, len(x), 100):
                correct += int((net(x[i:i + 100]).argmax(1) == torch.from_numpy(labels[i:i + 100])).sum())
        print(f"accuracy pytorch {a.mode} top1={correct / len(x):.4f}")
        return
    iters = a.iters or (100 if a.batch == 1 else 15)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(a.batch, 3, 32, 32, generator=gen) * 50
    times = []
    with torch.no_grad():
        for s in range(-3, iters):   # three warm-up rounds
            t = time.perf_counter()
            net(x)
            if s >= 0:
                times.append(time.perf_counter() - t)
    times.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"bench pytorch {a.mode} vgg batch={a.batch} threads={a.threads} median={a.batch / times[iters // 2]:.1f} "
          f"best={a.batch / times[0]:.1f} peak_rss_mb={rss:.0f}")


if __name__ == "__main__":
    main()
