"""PyTorch side of tests/onnx_torch.sh: models exported by torch.onnx.export and run by
nn.h through the model tool (`nn run MODEL.onnx IN.npy OUT.npy`), against PyTorch's eval
logits within 1e-4 relative (max |a - b| / max |b| over the batch): the VGG ConvNet of
examples/models.h, the two CNNs of examples/small_cnns.c (E4), torchvision's resnet18
(ImageNet stem at 224 x 224, CIFAR stem at 32 x 32) and mobilenet_v2, and a small net
of the other operators (GELU, Softplus, LeakyReLU, Sigmoid, Tanh, ReLU6, AvgPool with
ceil_mode and count_include_pad=False, MaxPool with ceil_mode and padding, BatchNorm1d,
Dropout (which the exporter leaves out in eval mode), a scale, x.view(x.size(0), -1)).
Random weights and BatchNorm statistics, eval mode; each model exported four ways: opset 13 and 11, do_constant_folding on and off,
with BatchNorm folded into the convolutions (TrainingMode.EVAL) and kept as
BatchNormalization nodes (TrainingMode.PRESERVE on the model in eval mode). `nn import`
turns one of them into an nn.h model file, which `nn run` gives the same logits.
    Usage: onnx_torch.py DIR NN [MODEL...]
Prints one "PASS"/"FAIL" line per check and "onnx_torch: N passed, N failed"."""
import os
import subprocess
import sys
import warnings

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models_torch import Counter, make, randomise, relative, vgg_convnet  # noqa: E402

TOLERANCE = 1e-4
warnings.filterwarnings("ignore")


def tutorial():
    """examples/small_cnns.c's "tutorial" net."""
    return nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def lenet():
    """examples/small_cnns.c's LeNet-5."""
    return nn.Sequential(nn.Conv2d(3, 6, 5), nn.Tanh(), nn.AvgPool2d(2, 2),
                         nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2, 2),
                         nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
                         nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


class Ops(nn.Module):
    """The other operators nn.h reads."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, 2, 1, groups=2, bias=False)
        self.conv3 = nn.Conv2d(8, 12, (3, 1), (1, 2), (1, 0), dilation=(2, 1))
        self.avg = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.fc1 = nn.Linear(12 * 2 * 2, 16)
        self.bn2 = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = nn.functional.gelu(self.bn1(self.conv1(x)))
        x = nn.functional.softplus(self.conv2(x))
        x = nn.functional.leaky_relu(self.avg(x), 0.1)
        x = torch.sigmoid(self.conv3(x)) * 1.5
        x = self.pool(torch.tanh(x))
        x = x.view(x.size(0), -1)
        x = nn.functional.relu6(self.bn2(self.fc1(x)))
        return self.fc2(self.drop(x))


MODELS = {   # name: (constructor, input size)
    "vgg_convnet": (vgg_convnet, 32),
    "tutorial": (tutorial, 32),
    "lenet": (lenet, 32),
    "resnet18": (lambda: make("resnet18"), 224),
    "resnet18_cifar": (lambda: make("resnet18_cifar"), 32),
    "mobilenet_v2": (lambda: make("mobilenet_v2"), 224),
    "ops": (Ops, 16),
}
VARIANTS = [   # opset, do_constant_folding, BatchNorm folded into the convolutions
    (13, True, True), (13, False, False), (11, True, False), (11, False, True)]


def run(tool, *args):
    proc = subprocess.run([tool, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {os.path.basename(tool)} {' '.join(args)}: status {proc.returncode}: {proc.stderr.strip()}")
    return proc.returncode == 0


def one(name, folder, tool, count):
    make_model, size = MODELS[name]
    torch.manual_seed(sum(map(ord, name)))
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    model = make_model()
    randomise(model, gen)
    model.eval()
    x = torch.randn(2, 3, size, size, generator=gen)
    with torch.no_grad():
        want = model(x).numpy()
    xin = os.path.join(folder, f"{name}_x.npy")
    np.save(xin, x.numpy())
    for opset, folding, fused in VARIANTS:
        what = f"{name} opset {opset}, constant folding {'on' if folding else 'off'}, " \
               f"BatchNorm {'folded' if fused else 'kept'}"
        path = os.path.join(folder, f"{name}_{opset}_{int(folding)}_{int(fused)}.onnx")
        out = path[:-5] + "_y.npy"
        torch.onnx.export(model, x, path, opset_version=opset, do_constant_folding=folding,
                          training=torch.onnx.TrainingMode.EVAL if fused else torch.onnx.TrainingMode.PRESERVE,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
        ok = run(tool, "run", path, xin, out)
        err = relative(np.load(out), want) if ok else float("inf")
        count.check(ok and err <= TOLERANCE, f"{what}: nn run gives PyTorch's logits (relative error {err:.2e})")
    # nn import: the model file gives the same logits
    st, out = os.path.join(folder, f"{name}.safetensors"), os.path.join(folder, f"{name}_imported_y.npy")
    ok = run(tool, "import", path, st) and run(tool, "run", st, xin, out)
    err = relative(np.load(out), want) if ok else float("inf")
    count.check(ok and err <= TOLERANCE, f"{name}: nn import, then nn run on the model file (relative error {err:.2e})")


def main(argv):
    folder, tool = argv[1], argv[2]
    names = argv[3:] or list(MODELS)
    count = Counter()
    for name in names:
        one(name, folder, tool, count)
    print(f"onnx_torch: {count.passed} passed, {count.failed} failed")
    return 1 if count.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
