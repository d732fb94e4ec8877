#!/bin/sh
# Everything CI runs, in order; ends with the total line "N passed, N failed".
#   unit tests (native), the same under ASan+UBSan, the kernel tests on aarch64 (NEON)
#   under qemu, docs/API.md against nn.h (tests/api_check.sh, which `make test` also
#   runs; the unit stage leaves it out so it counts once), compile checks (gcc, clang,
#   C++, every configuration macro), the benchmark programs build (tests/bench_build.sh), nn.h against PyTorch (tests/torch.sh: NaN and infinity
#   in every layer and loss, and the model-file interop), the ONNX backend node tests
#   (tests/onnx_check.sh), a short real-data smoke run of the
#   MLP on CIFAR-10 and one of the airbench94 recipe (tests/speedrun_check.sh),
#   tools/pack_images on hostile images, data-parallel training under
#   mpirun (tests/mpi_check.sh), each libFuzzer target for
#   FUZZ_CHECK_SECONDS (default 15), the threaded tests under ThreadSanitizer, the unit
#   tests built for Windows and run under Wine (tests/windows_check.sh), and quick ones
#   under valgrind.
cd "$(dirname "$0")/.." || exit 1
mkdir -p build
total_passed=0; total_failed=0
stage() {   # stage NAME command...: runs it, adds its last "N passed, N failed" line
    name=$1; shift
    echo "== $name"
    "$@" > "build/$name.log" 2>&1; status=$?
    grep -E '^(FAIL|[a-z_]+: [0-9]+ passed|.*died|.*exit status)' "build/$name.log" | head -n 60
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$|^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "build/$name.log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "$name: produced no summary (status $status); last lines:"; tail -n 25 "build/$name.log"
        total_failed=$((total_failed + 1)); return
    fi
    p=$(echo "$line" | sed -E 's/^([a-z_]+: )?([0-9]+) passed, ([0-9]+) failed$/\2/')
    f=$(echo "$line" | sed -E 's/^([a-z_]+: )?([0-9]+) passed, ([0-9]+) failed$/\3/')
    total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$name: exit status $status"; total_failed=$((total_failed + 1))
    fi
}
stage unit make -j2 test API_CHECK=
stage sanitizers make -j2 test-asan
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
    stage neon make -j2 test-neon
else
    echo "== neon: aarch64-linux-gnu-gcc or qemu-aarch64 missing"; total_failed=$((total_failed + 1))
fi
stage api tests/api_check.sh
stage compile tests/compile_check.sh
stage bench_build tests/bench_build.sh
stage torch tests/torch.sh
stage onnx tests/onnx_check.sh
stage smoke tests/smoke.sh
stage speedrun tests/speedrun_check.sh
stage pack tests/pack_check.sh
# Data-parallel training under real MPI (.ci/run installs Open MPI); missing MPI is a failure.
stage mpi tests/mpi_check.sh
# clang's sanitizer runtimes (Debian: libclang-rt-dev): libFuzzer and ThreadSanitizer.
if command -v clang >/dev/null; then
    stage fuzz make -s -j2 fuzz FUZZ_SECONDS="${FUZZ_CHECK_SECONDS:-15}"
    stage tsan make -s -j2 test-tsan
else
    echo "== fuzz, tsan: clang missing"; total_failed=$((total_failed + 2))
fi
# Windows: the unit tests cross-compiled with MinGW-w64 and run under Wine (.ci/run
# installs both; missing either is a failure).
if command -v x86_64-w64-mingw32-gcc >/dev/null; then
    stage windows make -s -j2 test-windows
else
    echo "== windows: x86_64-w64-mingw32-gcc missing"; total_failed=$((total_failed + 1))
fi
if command -v valgrind >/dev/null; then
    stage valgrind make -s -j2 test-valgrind
else
    echo "== valgrind: not installed, skipped"
fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
