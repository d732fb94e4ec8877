#!/bin/sh
# Runs the libFuzzer targets of tests/fuzz/ (built by `make fuzz-build`), each for
# SECONDS on its corpus build/fuzz/corpus/<target> (seeded by build/fuzz/make_corpus,
# grown by every run). A target passes when it ran its time without a crash, a
# timeout (an input taking over 10 s), an allocation over the harness's cap or a
# failed property check; the input that stopped it is kept in
# build/fuzz/artifacts/<target>/. Prints "fuzz: N passed, N failed".
#   Usage: tests/fuzz/run.sh SECONDS [TARGET...]     (default: every target)
# SECONDS 0 runs without a time limit; FUZZ_OPTIONS adds libFuzzer flags (for a
# campaign, e.g. FUZZ_OPTIONS=-runs=10000000). FUZZ_SKIP: see tests/fuzz/fuzz.h.
cd "$(dirname "$0")/../.." || exit 1
seconds=${1:-60}; shift
targets=${*:-"load_memory load_weights checkpoint cifar10 idx npy onnx"}
passed=0; failed=0
for t in load_memory load_weights checkpoint cifar10 idx npy onnx; do mkdir -p "build/fuzz/corpus/$t"; done
if ! build/fuzz/make_corpus build/fuzz/corpus > build/fuzz/make_corpus.log 2>&1; then
    echo "FAIL fuzz: build/fuzz/make_corpus (make fuzz-build) did not write the seeds:"
    tail -n 5 build/fuzz/make_corpus.log; echo "fuzz: 0 passed, 1 failed"; exit 1
fi
for t in $targets; do
    corpus=build/fuzz/corpus/$t; artifacts=build/fuzz/artifacts/$t; log=build/fuzz/$t.log
    mkdir -p "$artifacts"
    if [ ! -x "build/fuzz/fuzz_$t" ]; then
        echo "FAIL fuzz: build/fuzz/fuzz_$t is missing (make fuzz-build)"
        failed=$((failed + 1)); continue
    fi
    # room for a few records, layers or tensors more than the seeds hold; the model
    # files' keywords as a dictionary
    case $t in
        cifar10) options="-max_len=10000" ;;
        idx|npy) options="-max_len=4096" ;;
        onnx) options="-max_len=16384" ;;
        *) options="-max_len=16384 -dict=tests/fuzz/safetensors.dict" ;;
    esac
    "build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 $options ${FUZZ_OPTIONS:-} \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" > "$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    size=$(ls "$corpus" | wc -l)
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        echo "  $t: ${runs:-?} runs (${rate:-?}/s), corpus $size inputs"
    else
        failed=$((failed + 1))
        why=$(grep -m 1 -E '^fuzz: |runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log")
        echo "FAIL fuzz: $t (status $status): ${why:-see $log}"
        grep -m 1 -E '^(artifact_prefix|Test unit written to)' "$log" | sed 's/^/  /'
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
