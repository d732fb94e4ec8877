#!/bin/sh
# The mpi stage of make check: data-parallel training under real Open MPI (or MPICH).
# tests/mpi_test.c with mpirun -np 2 and -np 3 (same start, bit-identical parameters on
# every rank after 20 steps, P shards = one process within 1e-5 without BatchNorm and
# with synchronised BatchNorm, sharded evaluation exactly one process's accuracy); the
# failure tests (a rank that exits or is killed mid-training: the others stop with an
# error within the timeout, never hang); examples/mpi_train.c for a few steps (rank 0
# alone writes the model). Ends with "mpi: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
passed=0; failed=0
ok()  { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }
finish() { echo "mpi: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
if ! command -v "${MPICC:-mpicc}" >/dev/null || ! command -v mpirun >/dev/null; then
    bad "mpicc or mpirun missing (install libopenmpi-dev and openmpi-bin)"; finish
fi
make -s mpi || { bad "make mpi"; finish; }
MPIRUN="mpirun --oversubscribe"
[ "$(id -u)" -eq 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
log=build/mpi_check.log
for np in 2 3; do
    timeout 300 $MPIRUN -np $np build/mpi_test > "$log" 2>&1; status=$?
    grep -E '^(ok|FAIL|     )' "$log"
    line=$(grep -E '^mpi_test: [0-9]+ passed, [0-9]+ failed$' "$log")
    if [ -z "$line" ]; then
        bad "mpi_test -np $np: no summary (status $status)"; tail -n 20 "$log"; continue
    fi
    passed=$((passed + $(echo "$line" | sed -E 's/^mpi_test: ([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')))
    [ "$status" -eq 0 ] || bad "mpi_test -np $np: exit status $status"
done
# A rank that dies: mpirun must end the job with a non-zero status and a message well
# before the 60 s timeout (status 124 would be the timeout: a hang; a killed rank makes
# mpirun itself return 137).
for how in die kill; do
    for np in 2 3; do
        start=$(date +%s)
        timeout 60 $MPIRUN -np $np build/mpi_test --$how 1 > "$log" 2>&1; status=$?
        took=$(( $(date +%s) - start ))
        if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && [ "$took" -lt 60 ] &&
           grep -q "rank 1: .* at step 10" "$log" && grep -qi "mpirun\|abort\|terminat" "$log"; then
            ok "mpi_test -np $np --$how 1 (rank 1 exits or is killed mid-training): the job stops with an error in ${took}s (status $status)"
        else
            bad "mpi_test -np $np --$how 1: status $status after ${took}s"; tail -n 15 "$log"
        fi
    done
done
# The example, if CIFAR-10 is here: two processes, rank 0 writes the files.
if [ -f data/cifar-10-batches-bin/data_batch_1.bin ]; then
    out=build/mpi_train_check; rm -rf "$out"
    if timeout 600 $MPIRUN -np 2 build/mpi_train --model mlp --max_steps 20 --eval_freq 10 --out "$out" \
           > "$log" 2>&1 && grep -q "result: test_accuracy=" "$log" && [ -s "$out/model.safetensors" ] &&
           [ -s "$out/mpi_train.csv" ]; then
        ok "mpi_train -np 2 --model mlp: trains, evaluates in shards, rank 0 writes the model and curves"
    else
        bad "mpi_train -np 2 --model mlp"; tail -n 15 "$log"
    fi
else
    bad "mpi_train: data/cifar-10-batches-bin missing (make data)"
fi
finish
