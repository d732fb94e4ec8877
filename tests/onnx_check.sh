#!/bin/sh
# The ONNX backend node tests of Debian's libonnx-testdata through nn.h's importer
# (tests/onnx_node_tests.c prints pass / fail / unsupported per test), and every test in
# tests/onnx_node_pass.txt (those of the operators and attribute values nn.h supports,
# docs/ONNX.md) must pass: one that fails, or turns unsupported, is a failure. Ends with
# "onnx: N passed, N failed". Argument: the node tests' folder (default Debian's).
cd "$(dirname "$0")/.." || exit 1
root=${1:-/usr/share/libonnx-testdata/data/node}
if [ ! -d "$root" ]; then
    echo "onnx: $root missing (Debian's libonnx-testdata)"; echo "onnx: 0 passed, 1 failed"; exit 1
fi
mkdir -p build
if ! cc -O2 -std=c99 -Wall -Wextra -Wpedantic -I. tests/onnx_node_tests.c -o build/onnx_node_tests -lm -lpthread; then
    echo "FAIL onnx_node_tests: does not compile"; echo "onnx: 0 passed, 1 failed"; exit 1
fi
build/onnx_node_tests "$root" > build/onnx_node_tests.log 2>&1
cat build/onnx_node_tests.log
line=$(grep -E '^onnx: [0-9]+ passed, [0-9]+ failed$' build/onnx_node_tests.log | tail -n 1)
if [ -z "$line" ]; then echo "FAIL onnx_node_tests: no summary"; echo "onnx: 0 passed, 1 failed"; exit 1; fi
passed=$(echo "$line" | sed -E 's/^onnx: ([0-9]+) passed.*/\1/')
failed=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
while read -r name; do
    if ! grep -qx "pass $name" build/onnx_node_tests.log; then
        echo "FAIL $name: listed in tests/onnx_node_pass.txt and did not pass"; failed=$((failed + 1))
    fi
done < tests/onnx_node_pass.txt
echo "onnx: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
