#!/bin/sh
# torchvision's resnet18 (ImageNet stem at 224 x 224, CIFAR stem at 32 x 32),
# mobilenet_v2 at 224 x 224 and the VGG ConvNet against nn.h through the model tool:
# PyTorch's state_dict (random weights and BatchNorm statistics) -> `nn convert` ->
# `nn run` on a random .npy batch gives PyTorch's eval logits within 1e-4 relative,
# and the converted nn.h file loads into torchvision's model strictly and gives nn.h's
# logits, as does a model nn.h trained a few steps (tests/models_train.c; see
# tests/models_torch.py), after the PyTorch side's own check (its safetensors writer and
# reader round trip every model's state_dict, strictly). Needs Debian's python3-torch and
# python3-torchvision (/usr/bin/python3). Arguments: architectures (default all).
set -e
cd "$(dirname "$0")/.."
dir=build/models_torch; mkdir -p $dir
make -s build/nn
cc -O2 -std=c99 -Wall -Wextra -Wpedantic -I. tests/models_train.c -o build/models_train -lm -lpthread
/usr/bin/python3 tests/models_torch.py --selftest $dir
/usr/bin/python3 tests/models_torch.py $dir build/nn build/models_train "$@"
