#!/bin/sh
# The benchmark programs (bench/*.c) build warning-free against today's nn.h: they reach
# into the implementation (profiles), so a change inside nn.h can break them unnoticed.
cd "$(dirname "$0")/.." || exit 1
passed=0; failed=0
for target in $(ls bench/*.c | sed -e 's|bench/|bench_|' -e 's|\.c$||'); do
    if make -s -B "build/$target" WARN="-std=c99 -Wall -Wextra -Wpedantic -Werror" > "build/$target.build.log" 2>&1; then
        echo "ok   $target builds"; passed=$((passed + 1))
    else
        echo "FAIL $target does not build:"; head -n 20 "build/$target.build.log"; failed=$((failed + 1))
    fi
done
echo "bench_build: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
