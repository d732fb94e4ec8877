#!/bin/sh
# tools/pack_images on hostile images, in a scratch tree under build/pack_check:
# an image of 2x0 pixels (31 bytes), headers that announce 20000x20000 (a 33-byte PPM)
# and 5000x5000 pixels (a 33-byte PNG), a PPM and a JPEG cut short, a text file. Each
# is skipped with a message naming it, fast (well under a second: nothing is
# decoded from a bad header), the rest is packed (exit status 3: packed, images
# skipped), and no temporary file is left behind. Then the failures (a batch file
# left empty by skipped images, an output folder that cannot be created, SIGTERM in
# the middle of a run) leave OUTDIR as it was, without temporary files.
#   Usage: tests/pack_check.sh     (PACK_IMAGES=path runs another build of the tool)
# Prints "pack: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
tool=${PACK_IMAGES:-build/pack_images}
out=build/pack_check
passed=0; failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL pack: $*"; }
summary() { echo "pack: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

# solid FILE MAGIC W H BYTES OCTAL: a binary PNM of one grey level
solid() {
    { printf '%s\n%s %s\n255\n' "$2" "$3" "$4"; head -c "$5" /dev/zero | tr '\0' "\\$6"; } > "$1"
}
no_temporaries() {   # no_temporaries DIR WHAT
    left=$(find "$1" -name '*.tmp' 2>/dev/null)
    if [ -z "$left" ]; then ok; else bad "$2 left temporary files: $left"; fi
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

rm -rf "$out"; mkdir -p "$out"
if [ -z "${PACK_IMAGES:-}" ]; then
    if make -s build/pack_images > "$out/build.log" 2>&1; then ok
    else bad "building tools/pack_images.c"; tail -n 20 "$out/build.log"; summary; fi
fi

# ---- a tree with 40 good training images, 1 good test image and 6 hostile files
# (at least 8 good ones per batch file, so that none is left empty) ----
t=$out/mixed
mkdir -p "$t/train/a" "$t/train/b" "$t/test/a" "$t/test/b"
for i in 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20; do
    solid "$t/train/a/good$i.ppm" P6 32 32 3072 200
    solid "$t/train/b/good$i.pgm" P5 40 30 1200 100
done
solid "$t/test/b/good.ppm" P6 8 8 192 050
{ printf 'P6\n2 0\n255\n'; head -c 20 /dev/zero; } > "$t/train/a/empty.ppm"              # 31 bytes
{ printf 'P6\n20000 20000\n255\n'; head -c 14 /dev/zero; } > "$t/train/b/giant.ppm"      # 33 bytes
# PNG signature and an IHDR chunk of 5000 x 5000 RGB, nothing else (33 bytes)
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000\023\210\000\000\023\210\010\002\000\000\000\000\000\000\000' \
    > "$t/train/a/giant.png"
{ printf 'P6\n64 64\n255\n'; head -c 100 /dev/zero; } > "$t/train/b/cut.ppm"
# a JPEG cut after its frame header (8 x 8, 3 components): no tables, no scan
printf '\377\330\377\300\000\021\010\000\010\000\010\003\001\021\000\002\021\000\003\021\000' > "$t/test/a/cut.jpg"
printf 'not an image\n' > "$t/train/a/text.png"
start=$(now_ms)
timeout 60 "$tool" "$t" "$out/mixed_out" > "$out/mixed.stdout" 2> "$out/mixed.stderr"; status=$?
ms=$(( $(now_ms) - start ))
echo "hostile images: status $status in $ms ms"
if [ "$status" -eq 3 ]; then ok; else bad "the mixed tree gave status $status, expected 3 (packed, images skipped)"; fi
if [ "$ms" -lt 1000 ]; then ok; else bad "the mixed tree took $ms ms, expected well under a second"; fi
expect_message() {   # expect_message FILE PATTERN
    if grep -q -- "$1: skipped, $2" "$out/mixed.stderr"; then ok
    else bad "no message '$1: skipped, $2'; stderr: '$(head -c 600 "$out/mixed.stderr")'"; fi
}
expect_message "$t/train/a/empty.ppm" "2x0 pixels (an empty image)"
expect_message "$t/train/b/giant.ppm" "20000x20000 pixels (more than the 4096x4096 accepted)"
expect_message "$t/train/a/giant.png" "5000x5000 pixels (more than the 4096x4096 accepted)"
expect_message "$t/train/b/cut.ppm" "truncated: 12188 bytes of its 64x64 pixels are missing"
expect_message "$t/test/a/cut.jpg" "cannot decode"
expect_message "$t/train/a/text.png" "not an image stb_image can read"
if grep -q "^skipped 5 training and 1 test images" "$out/mixed.stdout"; then ok
else bad "the summary does not count the skipped images: $(cat "$out/mixed.stdout")"; fi
bytes=$(cat "$out"/mixed_out/data_batch_*.bin 2>/dev/null | wc -c)
if [ "$bytes" -eq $((40 * 3073)) ]; then ok; else bad "the training batches hold $bytes bytes, expected 40 records"; fi
if [ "$(cat "$out/mixed_out/test_batch.bin" 2>/dev/null | wc -c)" -eq 3073 ]; then ok
else bad "test_batch.bin does not hold exactly the one good test image"; fi
no_temporaries "$out/mixed_out" "the mixed tree"

# ---- failures leave OUTDIR as it was ----
t=$out/empty_batch   # 5 training images, so one per batch file: the empty image's is left empty
mkdir -p "$t/train/a" "$t/test/a" "$out/kept"
for i in 1 2 3 4; do solid "$t/train/a/good$i.ppm" P6 32 32 3072 200; done
cp "$out/mixed/train/a/empty.ppm" "$t/train/a/"
echo old > "$out/kept/data_batch_1.bin"
timeout 60 "$tool" "$t" "$out/kept" > /dev/null 2> "$out/empty_batch.stderr"; status=$?
if [ "$status" -eq 1 ] && grep -q "no image left (1 skipped)" "$out/empty_batch.stderr"; then ok
else bad "a batch emptied by a skipped image: status $status (expected 1), stderr: '$(cat "$out/empty_batch.stderr")'"; fi
if [ "$(cat "$out/kept/data_batch_1.bin")" = old ] && [ "$(ls "$out/kept")" = data_batch_1.bin ]; then ok
else bad "a failed run changed OUTDIR: $(ls "$out/kept" | tr '\n' ' ')"; fi
no_temporaries "$out/kept" "a batch emptied by a skipped image"

echo file > "$out/not_a_dir"
timeout 60 "$tool" "$out/mixed" "$out/not_a_dir/sub" > /dev/null 2> "$out/not_a_dir.stderr"; status=$?
if [ "$status" -eq 1 ] && grep -q "cannot create" "$out/not_a_dir.stderr"; then ok
else bad "an output folder that cannot be created: status $status, stderr '$(cat "$out/not_a_dir.stderr")'"; fi

"$tool" --size 0 "$out/mixed" "$out/x" > /dev/null 2>&1; status=$?
if [ "$status" -eq 2 ]; then ok; else bad "--size 0 gave status $status, expected 2"; fi

# SIGTERM while packing: 5 training images of 4096 x 4096 (one file, five links)
# take long enough to be interrupted once the first temporary file exists.
t=$out/slow
mkdir -p "$t/train/a" "$t/test/a" "$out/slow_out"
solid "$t/train/a/big1.pgm" P5 4096 4096 16777216 100
for i in 2 3 4 5; do ln "$t/train/a/big1.pgm" "$t/train/a/big$i.pgm"; done
"$tool" "$t" "$out/slow_out" > /dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 400 ] && ! ls "$out/slow_out" | grep -q '\.tmp$'; do sleep 0.01; i=$((i + 1)); done
if ls "$out/slow_out" | grep -q '\.tmp$'; then
    kill -TERM $pid; wait $pid 2>/dev/null; status=$?
    if [ "$status" -eq 143 ]; then ok; else bad "pack_images after SIGTERM: status $status, expected 143"; fi
    no_temporaries "$out/slow_out" "SIGTERM"
    if [ -z "$(ls "$out/slow_out")" ]; then ok; else bad "SIGTERM left files: $(ls "$out/slow_out")"; fi
else
    wait $pid; bad "no temporary file appeared within 4 s (status $?)"
fi
rm -rf "$t"
summary
