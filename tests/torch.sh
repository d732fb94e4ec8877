#!/bin/sh
# nn.h against PyTorch (Debian's python3-torch, /usr/bin/python3): NaN and infinity in
# every layer, loss and argmax (tests/nan_torch.c + tests/nan_torch.py, one test per
# case) on each path: the native SIMD build, NN_NO_SIMD, and NEON under qemu when
# aarch64-linux-gnu-gcc and qemu-aarch64 are there; then the layer options
# (tests/options_torch.c + .py, one test per case), the model-file
# interoperability of tests/interop.sh and the torchvision models of
# tests/models_torch.sh, the ONNX models of tests/onnx_torch.sh and nn_quantize against
# torch.ao.quantization (tests/quantize_torch.sh; one test each), then two training steps
# of ResNet-18 and MobileNetV2 and examples/resnet.c's model (tests/train_torch.sh, two
# tests), and the ONNX export in onnx.checker and OpenCV (tests/onnx_export.sh, one
# test); the airbench94 recipe's features (tests/recipe_torch.sh, one test per case)
# come before interop. Ends with "torch: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
passed=0; failed=0
compare() {   # compare NAME RUNNER BINARY: runs the cases, counts PyTorch's verdicts
    dir=build/nan_torch/$1; rm -rf "$dir"; mkdir -p "$dir"
    echo "== nan_torch ($1)"
    if ! $2 "$3" "$dir"; then echo "FAIL nan_torch ($1): the C side failed"; failed=$((failed + 1)); return; fi
    /usr/bin/python3 tests/nan_torch.py "$dir" > "$dir.log" 2>&1
    cat "$dir.log"
    line=$(grep -E '^nan_torch: [0-9]+ passed, [0-9]+ failed$' "$dir.log" | tail -n 1)
    if [ -z "$line" ]; then echo "FAIL nan_torch ($1): no summary"; failed=$((failed + 1)); return; fi
    passed=$((passed + $(echo "$line" | sed -E 's/^nan_torch: ([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')))
}
mkdir -p build/nan_torch
flags="-O2 -std=c99 -Wall -Wextra -Wpedantic -I. tests/nan_torch.c -lm -lpthread"
if cc $flags -o build/nan_torch_native; then compare native "" build/nan_torch_native
else echo "FAIL nan_torch: does not compile"; failed=$((failed + 1)); fi
if cc -DNN_NO_SIMD $flags -o build/nan_torch_scalar; then compare scalar "" build/nan_torch_scalar
else echo "FAIL nan_torch (NN_NO_SIMD): does not compile"; failed=$((failed + 1)); fi
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
    if aarch64-linux-gnu-gcc -static $flags -o build/nan_torch_neon; then compare neon qemu-aarch64 build/nan_torch_neon
    else echo "FAIL nan_torch (NEON): does not compile"; failed=$((failed + 1)); fi
else
    echo "nan_torch (NEON): aarch64-linux-gnu-gcc or qemu-aarch64 missing, skipped"
fi
# The layer options (tests/options_torch.c + .py, one test per case), float64 on the PyTorch side.
dir=build/options_torch; rm -rf "$dir"; mkdir -p "$dir"
echo "== options_torch"
if cc -O2 -std=c99 -Wall -Wextra -Wpedantic -I. tests/options_torch.c -lm -lpthread -o build/options_torch_prog &&
   build/options_torch_prog "$dir"; then
    /usr/bin/python3 tests/options_torch.py "$dir" > "$dir.log" 2>&1
    cat "$dir.log"
    line=$(grep -E '^options_torch: [0-9]+ passed, [0-9]+ failed$' "$dir.log" | tail -n 1)
    if [ -z "$line" ]; then echo "FAIL options_torch: no summary"; failed=$((failed + 1))
    else
        passed=$((passed + $(echo "$line" | sed -E 's/^options_torch: ([0-9]+) passed.*/\1/')))
        failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')))
    fi
else echo "FAIL options_torch: the C side failed"; failed=$((failed + 1)); fi
# The airbench94 recipe's training features (tests/recipe_torch.sh, one test per case).
tests/recipe_torch.sh > build/recipe_torch.log 2>&1
cat build/recipe_torch.log
line=$(grep -E '^recipe_torch: [0-9]+ passed, [0-9]+ failed$' build/recipe_torch.log | tail -n 1)
if [ -z "$line" ]; then echo "FAIL recipe_torch: no summary"; failed=$((failed + 1))
else
    passed=$((passed + $(echo "$line" | sed -E 's/^recipe_torch: ([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')))
fi
if tests/interop.sh; then passed=$((passed + 1)); else echo "FAIL interop"; failed=$((failed + 1)); fi
if tests/models_torch.sh; then passed=$((passed + 1)); else echo "FAIL models_torch"; failed=$((failed + 1)); fi
if tests/onnx_torch.sh; then passed=$((passed + 1)); else echo "FAIL onnx_torch"; failed=$((failed + 1)); fi
# int8: nn_quantize against torch.ao.quantization (onednn) on the VGG ConvNet (tests/quantize_torch.sh).
if COUNT=200 TEST=500 tests/quantize_torch.sh; then passed=$((passed + 1)); else echo "FAIL quantize_torch"; failed=$((failed + 1)); fi
# Training PyTorch-exact, and examples/resnet.c's model in torchvision (tests/train_torch.sh).
if tests/train_torch.sh steps; then passed=$((passed + 1)); else echo "FAIL train_torch steps"; failed=$((failed + 1)); fi
if tests/train_torch.sh resnet; then passed=$((passed + 1)); else echo "FAIL train_torch resnet"; failed=$((failed + 1)); fi
# nn_save_onnx's models in onnx.checker, OpenCV and a numpy interpreter (tests/onnx_export.sh).
if tests/onnx_export.sh; then passed=$((passed + 1)); else echo "FAIL onnx_export"; failed=$((failed + 1)); fi
echo "torch: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
