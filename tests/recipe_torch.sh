#!/bin/sh
# The airbench94 recipe's training features against PyTorch (Debian's python3-torch,
# /usr/bin/python3): tests/recipe_torch.c writes the cases into build/recipe_torch,
# tests/recipe_torch.py recomputes them (parameter groups with SGD, Adam and AdamW, label
# smoothing, the batcher's padding and flips, test-time augmentation, the EMA, the
# triangular schedule). Ends with "recipe_torch: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
dir=build/recipe_torch; rm -rf "$dir"; mkdir -p "$dir"
echo "== recipe_torch"
if ! cc -O2 -std=c99 -Wall -Wextra -Wpedantic -I. tests/recipe_torch.c -lm -lpthread -o build/recipe_torch_prog ||
   ! build/recipe_torch_prog "$dir"; then
    echo "recipe_torch: 0 passed, 1 failed"
    exit 1
fi
/usr/bin/python3 tests/recipe_torch.py "$dir"
