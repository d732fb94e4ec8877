#!/bin/sh
# Training is PyTorch-exact (tests/train_torch.c + tests/train_torch.py): two SGD steps
# of the CIFAR ResNet-18 (3 x 32 x 32) and MobileNetV2 (3 x 64 x 64) of examples/models.h
# from nn.h's initial weights, repeated by torchvision's models from the same file;
# then a model written by examples/resnet.c (two steps on the first 64 images of each
# CIFAR-10 file, so that it runs in seconds) loads strictly into torchvision's CIFAR
# ResNet-18 and gives `nn run`'s logits. Needs Debian's python3-torch and
# python3-torchvision (/usr/bin/python3). Argument: steps or resnet (default both);
# without data/cifar-10-batches-bin the resnet part is skipped (and passes).
set -e
cd "$(dirname "$0")/.."
dir=build/train_torch; mkdir -p $dir
what=${1:-all}
if [ "$what" = all ] || [ "$what" = steps ]; then
    cc -O2 -std=c99 -Wall -Wextra -Wpedantic -I. tests/train_torch.c -o build/train_torch_prog -lm -lpthread
    /usr/bin/python3 tests/train_torch.py steps $dir build/train_torch_prog
fi
if [ "$what" = all ] || [ "$what" = resnet ]; then
    if [ ! -d data/cifar-10-batches-bin ]; then
        echo "train_torch resnet: data/cifar-10-batches-bin missing (make data), skipped"
        exit 0
    fi
    make -s build/nn build/resnet
    small=$dir/cifar-small; rm -rf $small $dir/resnet; mkdir -p $small
    for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
        head -c $((64 * 3073)) data/cifar-10-batches-bin/$f.bin > $small/$f.bin
    done
    build/resnet --max_steps 2 --batch_size 16 --threads 2 --data_dir $small --out $dir/resnet > $dir/resnet.log 2>&1 || { cat $dir/resnet.log; exit 1; }
    /usr/bin/python3 tests/train_torch.py resnet $dir/resnet/resnet.safetensors build/nn $dir
fi
