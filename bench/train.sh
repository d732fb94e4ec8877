#!/bin/sh
# make bench-train: nn.h (build/bench_train) and PyTorch (bench/pytorch_ref.py, Debian's
# /usr/bin/python3 with python3-torch) alternately, case by case, so both see the same
# machine. One line per case:
#   train|infer <model> batch=<b> threads=<t> nn=<images/s> pytorch=<images/s> ratio=<nn/pytorch> nn_rss_mb= pytorch_rss_mb=
# images/s is the median of the timed rounds; each side runs ROUNDS times (alternating)
# and the best median counts, to ride out the noise of a shared machine. The MLP cases
# take about a second a round and are the noisiest, so they run MLP_ROUNDS times.
# The models: the VGG ConvNet and the MLP (E1) at 32 x 32, ResNet-18 with the CIFAR stem at
# 32 x 32 (training, batch 128) and MobileNetV2 at 224 x 224 (inference, batch 1 and 32).
# Usage: bench/train.sh [case-filter]   e.g. bench/train.sh "vgg batch=32", "resnet18_cifar"
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${ROUNDS:-2}
MLP_ROUNDS=${MLP_ROUNDS:-5}
PY=/usr/bin/python3
if ! $PY -c "import torch" 2>/dev/null; then
    echo "bench-train: $PY cannot import torch (apt-get install python3-torch)"; exit 1
fi
field() { echo "$1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }
best_of() {   # best_of "a b c": the largest number
    echo "$1" | tr ' ' '\n' | sort -g | tail -n 1
}
run_case() {   # run_case MODE MODEL BATCH THREADS
    mode=$1; model=$2; batch=$3; threads=$4
    case "$mode $model batch=$batch threads=$threads" in *"$FILTER"*) ;; *) return ;; esac
    nn_all=""; py_all=""; nn_rss=0; py_rss=0
    rounds=$ROUNDS
    [ "$model" = mlp ] && rounds=$MLP_ROUNDS
    r=0
    while [ $r -lt "$rounds" ]; do
        line=$(build/bench_train --model "$model" --mode "$mode" --batch "$batch" --threads "$threads")
        nn_all="$nn_all $(field "$line" median)"; nn_rss=$(field "$line" peak_rss_mb)
        line=$(OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$threads \
               $PY bench/pytorch_ref.py --model "$model" --mode "$mode" --batch "$batch" --threads "$threads")
        py_all="$py_all $(field "$line" median)"; py_rss=$(field "$line" peak_rss_mb)
        r=$((r + 1))
    done
    nn=$(best_of "$nn_all"); py=$(best_of "$py_all")
    printf '%s %s batch=%d threads=%d nn=%.1f pytorch=%.1f ratio=%.2f nn_rss_mb=%s pytorch_rss_mb=%s\n' \
        "$mode" "$model" "$batch" "$threads" "$nn" "$py" "$(echo "$nn $py" | awk '{ print $1 / $2 }')" "$nn_rss" "$py_rss"
}
FILTER=${1:-}
echo "nn.h: $(build/bench_train --model mlp --mode infer --iters 1 --threads 1 >/dev/null && echo ok), PyTorch $($PY -c 'import torch; print(torch.__version__)'), $ROUNDS rounds each ($MLP_ROUNDS for the MLP)"
for threads in 1 2; do
    run_case train vgg 32 $threads
    run_case infer vgg 32 $threads
    run_case train vgg 128 $threads
    run_case infer vgg 128 $threads
    run_case train mlp 200 $threads
    run_case infer mlp 200 $threads
    run_case train resnet18_cifar 128 $threads
    run_case infer mobilenet_v2 1 $threads
    run_case infer mobilenet_v2 32 $threads
done
