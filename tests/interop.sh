#!/bin/sh
# nn.h <-> PyTorch: a model saved by nn.h gives the same logits in PyTorch (within 1e-4)
# and a model trained and saved by PyTorch gives the same logits in nn.h. Needs Debian's
# python3-torch (apt-get install python3-torch); `make check` runs it in tests/torch.sh.
set -e
cd "$(dirname "$0")/.."
dir=build/interop; mkdir -p $dir
cc -O2 -std=c99 -I. tests/interop.c -o build/interop_prog -lm -lpthread
build/interop_prog export $dir
/usr/bin/python3 tests/interop_torch.py $dir
build/interop_prog check $dir
echo "interop: both directions agree"
