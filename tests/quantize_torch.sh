#!/bin/sh
# nn.h's int8 quantization against PyTorch's (tests/quantize_torch.py: the quantization
# parameters layer by layer, the logits, the top-1 agreement, the accuracies): of MODEL
# when given (an nn.h float model file, e.g. a trained E3 ConvNet), else of the VGG
# ConvNet of examples/models.h with random weights and BatchNorm statistics (PyTorch's
# state_dict -> `nn convert`), calibrated on COUNT images of data_batch_1.bin and tested
# on TEST images of test_batch.bin. Needs Debian's python3-torch (/usr/bin/python3) and
# CIFAR-10 in data/. Usage: [MODEL=...] [COUNT=500] [TEST=1000] tests/quantize_torch.sh
set -e
cd "$(dirname "$0")/.."
dir=build/quantize_torch; mkdir -p $dir
make -s build/nn
model=${MODEL:-}
if [ -z "$model" ]; then
    /usr/bin/python3 - "$dir/vgg.torch.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests")
import torch
from models_torch import randomise, vgg_convnet
from interop_torch import write_safetensors
torch.manual_seed(0)
model = vgg_convnet()
randomise(model, torch.Generator().manual_seed(1))
write_safetensors(sys.argv[1], model.state_dict(), {"format": "pt"})
PY
    build/nn convert --arch vgg_convnet "$dir/vgg.torch.safetensors" "$dir/vgg.safetensors" > /dev/null
    model=$dir/vgg.safetensors
fi
# Calibration and test images: CIFAR-10 (make data packs it; a fresh clone has none yet).
[ -f data/cifar-10-batches-bin/data_batch_1.bin ] || make -s data
# The log goes through a file so that python's exit status is this script's (a pipe's is grep's).
status=0
/usr/bin/python3 tests/quantize_torch.py "$model" data/cifar-10-batches-bin build/nn "$dir" \
    --count "${COUNT:-500}" --test "${TEST:-1000}" > "$dir/log" 2>&1 || status=$?
grep -v -e 'UserWarning' -e 'warnings.warn' "$dir/log" || true
exit $status
