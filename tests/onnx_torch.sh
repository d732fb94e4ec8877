#!/bin/sh
# ONNX models exported by PyTorch run by nn.h: the VGG ConvNet, the E4 CNNs of
# examples/small_cnns.c, torchvision's resnet18 (224 x 224 and the CIFAR stem) and
# mobilenet_v2, and a small net of the other operators, each exported by
# torch.onnx.export at opsets 13 and 11 with do_constant_folding on and off (BatchNorm
# folded into the convolutions and kept): `nn run MODEL.onnx` gives PyTorch's eval logits
# within 1e-4 relative, and so does the nn.h model file `nn import` writes (see
# tests/onnx_torch.py). Needs Debian's python3-torch and python3-torchvision
# (/usr/bin/python3). Arguments: models (default all).
set -e
cd "$(dirname "$0")/.."
dir=build/onnx_torch; rm -rf $dir; mkdir -p $dir
make -s build/nn
/usr/bin/python3 tests/onnx_torch.py $dir build/nn "$@"
