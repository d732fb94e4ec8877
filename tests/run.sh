#!/bin/sh
# Runs test programs and sums their "name: N passed, N failed" lines.
# Usage: tests/run.sh [--prefix "qemu-aarch64 -L /usr/aarch64-linux-gnu"] prog...
# A program that dies without printing its summary counts as one failed test.
prefix=""
if [ "$1" = "--prefix" ]; then prefix="$2"; shift 2; fi
passed=0; failed=0
for prog in "$@"; do
    out=$($prefix "$prog" 2>&1); status=$?
    printf '%s\n' "$out" | grep -E '^(FAIL|  )' | head -n 40
    line=$(printf '%s\n' "$out" | grep -E ': [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        echo "$prog: died with status $status before its summary"
        printf '%s\n' "$out" | tail -n 20
        failed=$((failed + 1)); continue
    fi
    echo "$line"
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed$/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed$/\2/')
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$prog: exit status $status"; failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed" > "${SUMMARY_FILE:-/dev/null}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
