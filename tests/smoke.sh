#!/bin/sh
# A short real-data run: CIFAR-10 in the official binary layout (packed from
# ../shared/data or downloaded by `make data`), the E1 MLP for 300 steps, then the
# saved model reloaded by classify and embed (tests/classify_check.sh: test images as
# PNG files agree with the batch evaluation, bad files are refused).
# Then the two-layer nets of E6 (no data, well under a second) check their gradients.
# Prints "smoke: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
passed=0; failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL smoke: $*"; }
if make -s data > build/smoke_data.log 2>&1; then ok; else bad "make data"; tail -n 20 build/smoke_data.log; fi
if make -s build/mlp > build/smoke_build.log 2>&1; then ok; else bad "building examples/mlp.c"; tail -n 20 build/smoke_build.log; fi
rm -f build/smoke/mlp.csv build/smoke/mlp.png build/smoke/mlp.safetensors   # no stale results
out=$(build/mlp --max_steps 300 --eval_freq 100 --out build/smoke 2>build/smoke_mlp.err)
echo "$out" | tail -n 3
acc=$(echo "$out" | sed -n 's/^result: test_accuracy=\([0-9.]*\).*/\1/p')
# 300 steps of E1 reach about 0.38-0.40 on the full test set; chance is 0.10.
if [ -n "$acc" ] && awk "BEGIN { exit !($acc >= 0.33) }"; then ok
else bad "MLP test accuracy after 300 steps is '${acc:-missing}', expected >= 0.33"; tail -n 5 build/smoke_mlp.err; fi
for f in mlp.csv mlp.png mlp.safetensors; do
    if [ -s "build/smoke/$f" ]; then ok; else bad "build/smoke/$f was not written"; fi
done
# A bad flag is a one-line message and exit status 2.
build/mlp --batch_size zero > /dev/null 2>&1; status=$?
if [ "$status" -eq 2 ]; then ok; else bad "a bad flag gave status $status, expected 2"; fi
build/mlp --lr_schedule linear > /dev/null 2>&1; status=$?
if [ "$status" -eq 2 ]; then ok; else bad "--lr_schedule linear gave status $status, expected 2"; fi
# The saved model on image files; its counts join ours.
if [ -s build/smoke/mlp.safetensors ] && [ -n "$acc" ]; then
    out=$(tests/classify_check.sh build/smoke/mlp.safetensors "$acc" 2>&1)
    echo "$out" | grep -v '^classify: [0-9]* passed'
    line=$(echo "$out" | grep -E '^classify: [0-9]+ passed, [0-9]+ failed$')
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^classify: ([0-9]+) passed, ([0-9]+) failed$/\1/')
        f=$(echo "$line" | sed -E 's/^classify: ([0-9]+) passed, ([0-9]+) failed$/\2/')
        passed=$((passed + p)); failed=$((failed + f))
    else bad "tests/classify_check.sh died before its summary"; echo "$out" | tail -n 10; fi
fi
# README's minimal program, as a user would build it: the first ```c block of README.md
# beside a copy of nn.h, compiled with the README's own command, run from a directory
# whose data/ is ours. It must print the accuracy the README quotes (the run is
# deterministic) and write its model file.
rdir=build/smoke/readme
rm -rf "$rdir" && mkdir -p "$rdir" && cp nn.h "$rdir/" && ln -s "$(pwd)/data" "$rdir/data"
awk '/^```c$/ { n++; next } /^```$/ { if (n == 1) exit } n == 1' README.md > "$rdir/program.c"
quoted=$(sed -n 's/.*`test accuracy \([0-9.]*\)`.*/\1/p' README.md | head -n 1)
if (cd "$rdir" && cc -O2 program.c -o program -lm -lpthread) > build/smoke_readme.log 2>&1; then ok
else bad "README's program does not compile with the README's command"; tail -n 20 build/smoke_readme.log; fi
out=$(cd "$rdir" && ./program 2>&1); status=$?
echo "README program: $out"
if [ "$status" -eq 0 ] && [ -n "$quoted" ] && [ "$out" = "test accuracy $quoted" ]; then ok
else bad "README's program: status $status, printed '$out', the README quotes 'test accuracy ${quoted:-?}'"; fi
if [ -s "$rdir/mlp.safetensors" ]; then ok; else bad "README's program wrote no mlp.safetensors"; fi
# E6, no data needed: the two-layer nets check their own gradients against central
# differences; it exits 0 with every check passed, and 1 when a gradient is spoilt.
if make -s build/two_layer > build/smoke_build2.log 2>&1; then ok; else bad "building examples/two_layer.c"; tail -n 20 build/smoke_build2.log; fi
out=$(build/two_layer 2>&1); status=$?
line=$(echo "$out" | tail -n 1)
echo "$line"
checks=$(echo "$line" | sed -n 's/^result: checks_passed=\([0-9]*\) checks_failed=0 .*/\1/p')
if [ "$status" -eq 0 ] && [ -n "$checks" ] && [ "$checks" -ge 80 ]; then ok
else bad "two_layer: status $status, last line '$line' (expected checks_failed=0 and >= 80 checks)"; fi
out=$(build/two_layer --inject_error 2>&1); status=$?
if [ "$status" -eq 1 ] && echo "$out" | grep -q 'FAIL$'; then ok
else bad "two_layer --inject_error: status $status, expected 1 with a FAIL line"; fi
build/two_layer --epochs ten > /dev/null 2>&1; status=$?
if [ "$status" -eq 2 ]; then ok; else bad "two_layer with a bad flag gave status $status, expected 2"; fi
echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
