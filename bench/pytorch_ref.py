"""PyTorch side of `make bench-train`: the same models, batch sizes, optimisers and
thread counts as bench/train.c, one case per process (so that the peak resident memory
is the case's own). Run with Debian's /usr/bin/python3, which sees python3-torch:

    OMP_NUM_THREADS=T /usr/bin/python3 bench/pytorch_ref.py \
        --model vgg|mlp|resnet18_cifar|mobilenet_v2 --mode train|infer --batch B --threads T
        [--iters N] [--gemm-share]

Prints one line in bench/train.c's format:
    bench pytorch <mode> <model> batch=<b> threads=<t> median=<images/s> best=<images/s> peak_rss_mb=<MB>
Random data as in bench/train.c; training = zero_grad, forward, cross-entropy, backward,
optimiser step (VGG: Adam lr 1e-4; MLP: SGD lr 0.002; ResNet-18 and MobileNetV2: SGD lr
0.1, momentum 0.9, weight decay 5e-4); inference = forward under torch.no_grad() in eval
mode. resnet18_cifar is torchvision's resnet18(num_classes=10) with the CIFAR stem (conv1
3x3 stride 1 pad 1, no max-pool) at 32 x 32; mobilenet_v2 is torchvision's
mobilenet_v2(num_classes=10) at 224 x 224.
--gemm-share (MLP training): also times, in the same process, the first Linear's two
matrix products alone (torch.mm: y = x W^T and dW = dy^T x, the work nn.h's step cannot
avoid) and prints their share of the median step:
    gemms pytorch mlp batch=<b> threads=<t> fwd_ms= wgrad_ms= step_ms= share=<%>"""
import argparse
import resource
import time

import torch
from torch import nn


def vgg():
    layers, c = [], 3
    for stage in ([64], [128], [256, 256], [512, 512], [512, 512]):
        for width in stage:
            layers += [nn.Conv2d(c, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU()]
            c = width
        layers.append(nn.MaxPool2d(3, 2, 1))
    layers += [nn.AvgPool2d(1, 1, 0), nn.Flatten(), nn.Linear(512, 10)]
    return nn.Sequential(*layers)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 100), nn.LeakyReLU(0.02), nn.Linear(100, 10))


def resnet18_cifar():
    import torchvision
    net = torchvision.models.resnet18(num_classes=10)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    return net


def mobilenet_v2():
    import torchvision
    return torchvision.models.mobilenet_v2(num_classes=10)


MODELS = {"vgg": vgg, "mlp": mlp, "resnet18_cifar": resnet18_cifar, "mobilenet_v2": mobilenet_v2}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=list(MODELS), default="vgg")
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=0)
    ap.add_argument("--gemm-share", action="store_true")
    a = ap.parse_args()
    big = a.model in ("resnet18_cifar", "mobilenet_v2")
    batch = a.batch or {"mlp": 200, "resnet18_cifar": 128}.get(a.model, 32)
    iters = a.iters or (200 if a.model == "mlp" else 5 if batch >= 128 else 50 if batch == 1
                        else 10 if big else 15)
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    net = MODELS[a.model]()
    if big:
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    elif a.model == "vgg":
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    else:
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0, 1e-4)
                    m.bias.zero_()
        opt = torch.optim.SGD(net.parameters(), lr=0.002)
    size = 224 if a.model == "mobilenet_v2" else 32
    x = torch.randn(batch, 3, size, size) * (1 if big else 50)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    train = a.mode == "train"
    net.train(train)

    def step():
        if train:
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                net(x)

    times = sorted_times(step, iters)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"bench pytorch {a.mode} {a.model} batch={batch} threads={a.threads} "
          f"median={batch / times[len(times) // 2]:.1f} best={batch / times[0]:.1f} peak_rss_mb={rss:.0f}")
    if a.gemm_share and a.model == "mlp" and train:
        xf, w, dy = x.reshape(batch, -1), net[1].weight.detach(), torch.randn(batch, 100)
        fwd = sorted_times(lambda: torch.mm(xf, w.t()), iters)[iters // 2]
        wgrad = sorted_times(lambda: torch.mm(dy.t(), xf), iters)[iters // 2]
        step_s = times[len(times) // 2]
        print(f"gemms pytorch mlp batch={batch} threads={a.threads} fwd_ms={1e3 * fwd:.3f} "
              f"wgrad_ms={1e3 * wgrad:.3f} step_ms={1e3 * step_s:.3f} share={100 * (fwd + wgrad) / step_s:.0f}%")


def sorted_times(fn, iters):
    """Seconds of each of iters calls of fn after three warm-up calls (as bench/train.c), sorted."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)


if __name__ == "__main__":
    main()
