#!/bin/sh
# classify, embed, embed_model and unpack_images on real files, and on bad ones.
#   Usage: tests/classify_check.sh [MODEL [ACCURACY]]
# MODEL (build/smoke/mlp.safetensors, which tests/smoke.sh trains) must take 3x32x32
# CIFAR-10 images. A 1-channel Fashion-MNIST model (E5) is trained here in a second. ACCURACY is what nn_evaluate reported for MODEL on the whole test
# batch (smoke passes the MLP's); classify's batch evaluation must reproduce it.
# The agreement test: 200 test images (every 50th record, all classes) are written as
# PNG files, classified one by one, and must get the top-1 class of the batch
# evaluation of the same records read from the CIFAR-10 file (batches of 200).
# Prints "classify: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
model=${1:-build/smoke/mlp.safetensors}
expect_acc=$2
test_batch=data/cifar-10-batches-bin/test_batch.bin
out=build/classify_check
passed=0; failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL classify: $*"; }
summary() { echo "classify: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

# expect STATUS PATTERN WHAT command...: the command exits with STATUS (never a
# signal) and says something matching PATTERN on stderr.
expect() {
    want=$1; pattern=$2; what=$3; shift 3
    "$@" > "$out/stdout" 2> "$out/stderr"; status=$?
    if [ "$status" -eq "$want" ] && grep -q -- "$pattern" "$out/stderr"; then ok
    else bad "$what: status $status (expected $want), stderr: '$(head -c 300 "$out/stderr")'"; fi
}

rm -rf "$out"; mkdir -p "$out"
if [ ! -s "$model" ] || [ ! -s "$test_batch" ]; then
    bad "needs a model ($model: run tests/smoke.sh) and $test_batch (make data)"; summary
fi
if make -s -j2 build/classify build/unpack_images build/embed_model build/embed MODEL="$model" \
        > "$out/build.log" 2>&1; then ok
else bad "building classify, unpack_images, embed_model, embed"; tail -n 20 "$out/build.log"; summary; fi

# ---- PNG files classified one by one agree with the batch evaluation ----
if build/unpack_images --count 200 --stride 50 "$test_batch" "$out/png" > /dev/null 2>&1 &&
   [ "$(ls "$out/png" | grep -c '\.png$')" -eq 200 ]; then ok
else bad "unpack_images did not write 200 PNG files"; fi
build/classify --threads 1 --batch 200 --cifar "$test_batch" "$model" > "$out/batch.txt" 2> "$out/batch.err"
status=$?
acc=$(sed -n 's/^accuracy \([0-9.]*\) .*/\1/p' "$out/batch.txt")
if [ "$status" -eq 0 ] && [ -n "$acc" ]; then ok; else bad "classify --cifar: status $status, accuracy '$acc'"; fi
if [ -n "$expect_acc" ]; then
    if [ "$acc" = "$expect_acc" ]; then ok
    else bad "classify --cifar accuracy $acc differs from nn_evaluate's $expect_acc"; fi
fi
# PATH/png/00050_airplane.png: ...  and  FILE[50]: ...  both become  50: ...
build/classify --threads 1 --batch 1 "$model" "$out"/png/*.png > "$out/single.txt" 2> "$out/single.err"
status=$?
sed -n 's|^.*/0*\([0-9][0-9]*\)_[^/]*\.png:|\1:|p' "$out/single.txt" > "$out/single.lines"
sed -n 's|^.*\[\([0-9]*\)\]:|\1:|p' "$out/batch.txt" | awk -F: '$1 % 50 == 0' > "$out/batch.lines"
if [ "$status" -eq 0 ] && [ "$(wc -l < "$out/single.lines")" -eq 200 ]; then ok
else bad "classify on 200 PNG files: status $status, $(wc -l < "$out/single.lines") result lines"; fi
# field 2 of "50: cat 0.612, ..." is the top-1 class
agree=$(awk 'NR == FNR { top[$1] = $2; next } ($1 in top) && top[$1] == $2' \
        "$out/batch.lines" "$out/single.lines" | wc -l)
classes=$(awk '{ print $2 }' "$out/single.lines" | sort -u | wc -l)
echo "top-1 of the PNG files one by one = batch evaluation on $agree of 200 images" \
     "($classes different top-1 classes; batch accuracy $acc)"
if [ "$agree" -eq 200 ]; then ok; else bad "top-1 agrees on $agree of 200 images"; fi
# At the same batch size the PNG pixels must give the very same probabilities as the
# records: PNG is lossless, and a 32x32 image is not resampled.
build/classify --threads 1 --batch 1 --cifar "$test_batch" "$model" 2>&1 |
    sed -n 's|^.*\[\([0-9]*\)\]:|\1:|p' | awk -F: '$1 % 50 == 0' > "$out/batch1.lines"
if [ -s "$out/single.lines" ] && cmp -s "$out/single.lines" "$out/batch1.lines"; then ok
else bad "top-3 lines of the PNG files differ from those of the records (batch 1)"; fi

# ---- other sizes and formats: a solid grey as 64x48 PPM, 32x32 PPM, 40x40 PGM ----
solid() {   # solid FILE MAGIC W H BYTES OCTAL
    { printf '%s\n%s %s\n255\n' "$2" "$3" "$4"; head -c "$5" /dev/zero | tr '\0' "\\$6"; } > "$1"
}
solid "$out/grey_64x48.ppm" P6 64 48 9216 200
solid "$out/grey_32x32.ppm" P6 32 32 3072 200
solid "$out/grey_40x40.pgm" P5 40 40 1600 200
solid "$out/dark_32x32.ppm" P6 32 32 3072 040
build/classify --top 10 "$model" "$out/grey_64x48.ppm" "$out/grey_32x32.ppm" "$out/grey_40x40.pgm" \
    "$out/dark_32x32.ppm" > "$out/solid.txt" 2>&1
if [ "$(sed 's/^[^:]*: //' "$out/solid.txt" | head -n 3 | sort -u | wc -l)" -eq 1 ] &&
   [ "$(sed 's/^[^:]*: //' "$out/solid.txt" | sort -u | wc -l)" -eq 2 ]; then ok
else bad "a grey image resized or converted from grey does not classify as the 32x32 RGB one:"; cat "$out/solid.txt"; fi

# ---- a 1-channel model: E5's Fashion-MNIST MLP (examples/fashion_mlp.c), 1 x 28 x 28 ----
# One epoch of a small MLP; classify --idx on the IDX test files must give the accuracy
# fashion_mlp reported, and 100 test images written as PGM files (every 100th) must
# give, one by one, the lines of the same records read from the IDX file (batch 1).
# A colour PNG becomes grey (and 28 x 28) for it; embed with it compiled in agrees.
fashion=data/fashion-mnist
[ -s "$fashion/t10k-images-idx3-ubyte" ] || fashion=build/fashion-mnist
if [ ! -s "$fashion/t10k-images-idx3-ubyte" ] && ! tools/get_fashion_mnist.sh "$fashion" > "$out/fashion_get.log" 2>&1; then
    echo "classify: no Fashion-MNIST (apt-get install dataset-fashion-mnist, make fashion-data): 1-channel part skipped"
elif ! make -s build/fashion_mlp > "$out/fashion_build.log" 2>&1; then
    bad "building examples/fashion_mlp.c"; tail -n 20 "$out/fashion_build.log"
else
    fm="$out/fashion"; images="$fashion/t10k-images-idx3-ubyte"; labels="$fashion/t10k-labels-idx1-ubyte"
    build/fashion_mlp --data_dir "$fashion" --activation relu --epochs 1 --hidden 32 --batch_size 500 \
        --threads 1 --out "$fm" > "$out/fashion_train.txt" 2>&1
    fmodel="$fm/fashion_mlp_relu.safetensors"
    facc=$(sed -n 's/^result: test_accuracy=\([0-9.]*\) .*/\1/p' "$out/fashion_train.txt")
    if [ -s "$fmodel" ] && [ -n "$facc" ]; then ok; else bad "fashion_mlp did not train a model"; tail -n 5 "$out/fashion_train.txt"; fi
    build/classify --threads 1 --batch 200 --idx "$images" --labels "$labels" "$fmodel" > "$out/fbatch.txt" 2>&1
    status=$?
    gacc=$(sed -n 's/^accuracy \([0-9.]*\) .*/\1/p' "$out/fbatch.txt")
    echo "Fashion-MNIST MLP: classify --idx accuracy $gacc, fashion_mlp's test accuracy $facc"
    if [ "$status" -eq 0 ] && [ -n "$gacc" ] && [ "$gacc" = "$facc" ]; then ok
    else bad "classify --idx: status $status, accuracy '$gacc', fashion_mlp's '$facc'"; fi
    mkdir -p "$out/pgm"
    i=0
    while [ $i -lt 10000 ]; do
        name=$(printf '%05d' $i)
        { printf 'P5\n28 28\n255\n'; tail -c +$((16 + i * 784 + 1)) "$images" | head -c 784; } > "$out/pgm/$name.pgm"
        i=$((i + 100))
    done
    build/classify --threads 1 --batch 1 "$fmodel" "$out"/pgm/*.pgm > "$out/fsingle.txt" 2> "$out/fsingle.err"
    status=$?
    sed -n 's|^.*/0*\([0-9][0-9]*\)\.pgm:|\1:|p' "$out/fsingle.txt" > "$out/fsingle.lines"
    build/classify --threads 1 --batch 1 --idx "$images" --labels "$labels" "$fmodel" 2>&1 |
        sed -n 's|^.*\[\([0-9]*\)\]:|\1:|p' | awk -F: '$1 % 100 == 0' > "$out/fbatch1.lines"
    if [ "$status" -eq 0 ] && [ "$(wc -l < "$out/fsingle.lines")" -eq 100 ] && cmp -s "$out/fsingle.lines" "$out/fbatch1.lines"
    then ok; else bad "100 Fashion-MNIST PGM files (status $status) do not give the lines of their IDX records"; fi
    classes=$(awk '{ print $2 }' "$out/fsingle.lines" | sort -u | wc -l)
    if [ "$classes" -ge 5 ]; then ok; else bad "the 100 Fashion-MNIST images got only $classes different classes"; fi
    colour=$(ls "$out"/png/00000_*.png)
    if build/classify "$fmodel" "$colour" > "$out/fcolour.txt" 2>&1 && grep -q "^$colour: [A-Z]" "$out/fcolour.txt"
    then ok; else bad "a colour PNG with the 1-channel model:"; cat "$out/fcolour.txt"; fi
    if build/embed_model --name nn_model "$fmodel" "$fm/model_data.c" > /dev/null &&
       ${CC:-cc} -O2 -std=c99 -I. -I"$fm" $(pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb) \
           examples/embed.c -o "$fm/embed" -lm -lpthread > "$out/fembed_build.log" 2>&1 &&
       "$fm/embed" "$out"/pgm/00000.pgm "$out"/pgm/05000.pgm > "$out/fembed.txt" 2>&1 &&
       build/classify --batch 1 "$fmodel" "$out"/pgm/00000.pgm "$out"/pgm/05000.pgm > "$out/fclassify2.txt" 2>&1 &&
       cmp -s "$out/fembed.txt" "$out/fclassify2.txt"; then ok
    else bad "embed with the Fashion-MNIST model compiled in disagrees with classify"; cat "$out/fembed_build.log" "$out/fembed.txt"; fi
fi

# ---- embed: the model compiled in gives classify's lines ----
set -- "$out"/png/00000_*.png "$out"/png/02000_*.png "$out"/png/04000_*.png "$out"/png/06000_*.png \
       "$out"/png/09950_*.png
build/embed "$@" > "$out/embed.txt" 2>&1; status=$?
build/classify --batch 1 "$model" "$@" > "$out/classify5.txt" 2>&1
if [ "$status" -eq 0 ] && [ "$(wc -l < "$out/embed.txt")" -eq 5 ] && cmp -s "$out/embed.txt" "$out/classify5.txt"; then ok
else bad "embed (status $status) and classify disagree:"; diff "$out/embed.txt" "$out/classify5.txt" | head -n 10; fi

# ---- bad input: a message and status 1 (2 for usage), never a crash ----
good="$out/png/00000_airplane.png"
printf 'not an image\n' > "$out/text.png"
head -c 20000 "$model" > "$out/cut_header.safetensors"
head -c 100000 "$model" > "$out/cut_data.safetensors"
head -c 5000 "$test_batch" > "$out/cut.bin"
LC_ALL=C sed 's/"input":"3,32,32"/"input":"6,16,32"/' "$model" > "$out/six.safetensors"
if cmp -s "$model" "$out/six.safetensors"; then bad "could not make a 6-channel model from $model"; fi
expect 2 "give a model" "classify without arguments" build/classify
expect 2 "expects an integer" "classify --top zero" build/classify --top zero "$model" "$good"
expect 2 "at least one image" "classify without images" build/classify "$model"
expect 1 "cannot open" "classify, missing model" build/classify "$out/none.safetensors" "$good"
expect 1 "header length" "classify, a program as the model" build/classify build/classify "$good"
expect 1 "does not fit" "classify, model cut in its header" build/classify "$out/cut_header.safetensors" "$good"
expect 1 "spans bytes" "classify, model cut in its data" build/classify "$out/cut_data.safetensors" "$good"
expect 1 "1 to 4 channels" "classify, 6-channel model" build/classify "$out/six.safetensors" "$good"
LC_ALL=C sed 's/"input":"3,32,32"/"input":"1,96,32"/' "$model" > "$out/grey.safetensors"
if build/classify "$out/grey.safetensors" "$good" > "$out/grey.txt" 2>&1 && [ "$(wc -l < "$out/grey.txt")" -eq 1 ]; then ok
else bad "a 1 x 96 x 32 model does not classify a 32 x 32 colour PNG:"; cat "$out/grey.txt"; fi
expect 1 "not an image" "classify, a text file among images" build/classify "$model" "$good" "$out/text.png" "$good"
if [ "$(wc -l < "$out/stdout")" -eq 2 ]; then ok; else bad "classify did not go on with the images after a bad one"; fi
expect 1 "cannot open" "classify, missing image" build/classify "$model" "$out/none.png"
expect 1 "multiple of the 3073-byte record" "classify --cifar, cut batch file" \
    build/classify --cifar "$out/cut.bin" "$model"
expect 2 "usage" "embed without arguments" build/embed
expect 1 "cannot open" "embed, missing image" build/embed "$out/none.png" "$good"
if [ "$(wc -l < "$out/stdout")" -eq 1 ]; then ok; else bad "embed did not go on with the images after a bad one"; fi
expect 1 "not an image" "embed, a text file" build/embed "$out/text.png"
expect 2 "expected MODEL" "embed_model without arguments" build/embed_model
expect 2 "C identifier" "embed_model --name 9lives" build/embed_model --name 9lives "$model" "$out/m.c"
expect 1 "cannot open" "embed_model, missing model" build/embed_model "$out/none.safetensors" "$out/m.c"
expect 1 "not a safetensors file" "embed_model, text file" build/embed_model "$out/text.png" "$out/m.c"
expect 1 "not a safetensors file" "embed_model, model cut in its header" \
    build/embed_model "$out/cut_header.safetensors" "$out/m.c"
expect 1 "cannot create" "embed_model, output in a missing directory" build/embed_model "$model" "$out/no/m.c"
if [ ! -e "$out/m.c" ]; then ok; else bad "embed_model left $out/m.c behind after failing"; fi
expect 2 "expected BATCH" "unpack_images without arguments" build/unpack_images
expect 1 "cannot open" "unpack_images, missing batch" build/unpack_images "$out/none.bin" "$out/u"
expect 1 "multiple of the 3073-byte record" "unpack_images, cut batch" build/unpack_images "$out/cut.bin" "$out/u"
summary
