#!/bin/sh
# Source coverage of nn.h (of tools/npy.h for the npy target) reached by each fuzz
# target's corpus (after a campaign): builds the target with clang's coverage
# instrumentation into build/fuzz/cov/, runs it once over build/fuzz/corpus/<target>,
# and writes build/fuzz/cov/<target>.txt, the per-function coverage of the functions
# it reached (llvm-cov report).
# Prints one line per target: the line coverage of those functions.
# Needs llvm-profdata and llvm-cov (Debian: llvm-14).
#   Usage: tests/fuzz/coverage.sh [TARGET...]     (default: every target)
cd "$(dirname "$0")/../.." || exit 1
targets=${*:-"load_memory load_weights checkpoint cifar10 idx npy"}
mkdir -p build/fuzz/cov
for t in $targets; do
    bin=build/fuzz/cov/fuzz_$t; src=nn.h; prefix=nn
    if [ "$t" = npy ]; then src=tools/npy.h; prefix=npy; fi
    clang -O1 -g -fprofile-instr-generate -fcoverage-mapping -fsanitize=fuzzer -std=c99 \
        "tests/fuzz/fuzz_$t.c" tests/fuzz/fuzz_common.c -o "$bin" -lm -lpthread || exit 1
    rm -f "build/fuzz/cov/$t.profraw"
    LLVM_PROFILE_FILE="build/fuzz/cov/$t.profraw" "$bin" -runs=0 -artifact_prefix=build/fuzz/cov/ "build/fuzz/corpus/$t" \
        > "build/fuzz/cov/$t.log" 2>&1 || { echo "$t: the corpus run failed (build/fuzz/cov/$t.log)"; continue; }
    llvm-profdata merge -sparse "build/fuzz/cov/$t.profraw" -o "build/fuzz/cov/$t.profdata" || exit 1
    # the functions of src the corpus entered, with their region, line and branch counts
    llvm-cov report -show-functions "$bin" -instr-profile="build/fuzz/cov/$t.profdata" "$src" |
        awk -v p="$prefix" 'NR <= 2 || ($1 ~ "^(fuzz_[a-z_]*\\.c:)?" p && $3 != $2)' > "build/fuzz/cov/$t.txt"
    awk -v t="$t" -v src="$src" 'NR > 2 { n++; lines += $5; missed += $6 }
        END { printf "%s: %d %s functions reached, lines %d of %d covered in them (%.1f%%)\n", t, n, src,
              lines - missed, lines, lines ? 100 * (lines - missed) / lines : 0 }' "build/fuzz/cov/$t.txt"
done
