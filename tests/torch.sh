#!/bin/sh
# nn.h against PyTorch (Debian's python3-torch, /usr/bin/python3): NaN and infinity in
# every layer, loss and argmax (tests/nan_torch.c + tests/nan_torch.py, one test per
# case), and the model-file interoperability of tests/interop.sh (one test).
# Ends with "torch: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
dir=build/nan_torch; rm -rf $dir build/nan_torch.log; mkdir -p $dir
passed=0; failed=0
if cc -O2 -std=c99 -Wall -Wextra -Wpedantic -I. tests/nan_torch.c -o build/nan_torch_prog -lm -lpthread &&
   build/nan_torch_prog $dir && /usr/bin/python3 tests/nan_torch.py $dir > build/nan_torch.log 2>&1; then :; fi
cat build/nan_torch.log 2>/dev/null
line=$(grep -E '^nan_torch: [0-9]+ passed, [0-9]+ failed$' build/nan_torch.log 2>/dev/null | tail -n 1)
if [ -n "$line" ]; then
    passed=$(echo "$line" | sed -E 's/^nan_torch: ([0-9]+) passed.*/\1/')
    failed=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
else
    echo "FAIL nan_torch: no summary"; failed=1
fi
if tests/interop.sh; then passed=$((passed + 1)); else echo "FAIL interop"; failed=$((failed + 1)); fi
echo "torch: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
