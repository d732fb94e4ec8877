#!/bin/sh
# nn.h's ONNX export checked outside nn.h: tests/onnx_export.c trains and exports E1's
# MLP, E3's VGG ConvNet, E4's tutorial CNN and LeNet-5, resnet18_cifar, mobilenet_v2
# and two nets of every other layer kind (random weights, three SGD steps so that the
# BatchNorm statistics are not 0 and 1); tests/onnx_export.py checks each with
# onnx.checker (full_check), runs it in OpenCV's DNN module on nn.h's batch (within 1e-4
# relative) and evaluates the graph with its numpy interpreter; onnx_export.c itself reads
# each export back with nn_load_onnx_memory (parameters bit for bit, outputs within 1e-5). `nn export` of the saved
# model files must give the same bytes as nn_save_onnx. Needs python3-onnx and
# python3-opencv (/usr/bin/python3). Arguments: net names (default all).
set -e
cd "$(dirname "$0")/.."
dir=build/onnx_export; rm -rf $dir; mkdir -p $dir
make -s build/nn
cc -O2 -std=c99 -Wall -Wextra -Wpedantic -I. tests/onnx_export.c -o build/onnx_export_prog -lm -lpthread
nets=${*:-mlp vgg_convnet tutorial_cnn lenet5 resnet18_cifar mobilenet_v2 layers layers_cv}
build/onnx_export_prog $dir $nets
for net in $nets; do
    build/nn export $dir/$net.safetensors $dir/$net.tool.onnx > /dev/null
    if ! cmp -s $dir/$net.onnx $dir/$net.tool.onnx; then
        echo "FAIL $net: nn export of the model file differs from nn_save_onnx"; exit 1
    fi
done
echo "PASS nn export of each model file gives nn_save_onnx's bytes"
/usr/bin/python3 tests/onnx_export.py $dir $nets
