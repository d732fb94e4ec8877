#!/bin/sh
# make bench-embed: the VGG ConvNet (E3) as a small app runs it, nn.h (build/bench_embed)
# against PyTorch (bench/embed_torch.py: float32, and int8 by torch.ao.quantization's
# post-training static quantization on the onednn engine), alternately, case by case,
# with the same weights on the same machine. One line per case:
#   embed vgg <fp32|int8> batch=<b> threads=<t> nn=<images/s> pytorch=<images/s> ratio=<nn/pytorch> nn_rss_mb= pytorch_rss_mb=
# (nn=- ratio=- where build/bench_embed has no such mode), then
#   size vgg fp32=<bytes> int8=<bytes>          (nn.h's model files; PyTorch's int8 state_dict where nn.h has none)
#   limit vgg batch=1 gemm_gflops= read_gbs= compute_ms= memory_ms= limit_ms=
#   latency vgg fp32 batch=1 threads=1 nn_ms=<ms an image> limit_ms= nn/limit=
#       (the limit: each Conv2d / Linear at the slower of its FLOPs at nn_gemm's measured
#       speed and its weights at the measured read bandwidth, summed: bench/embed.c --limit)
# and, with MODEL=path/convnet.safetensors (a trained E3 model, with its preprocessing),
#   accuracy vgg fp32=<a> int8=<a> pytorch_int8=<a>     (the 10,000 test images)
# Without MODEL the weights are random (nn_build's init), saved to build/embed_bench/.
# images/s is the median of the timed rounds; each side runs ROUNDS times (alternating)
# and the best median counts. Usage: bench/embed.sh [case-filter]   e.g. "fp32 batch=1"
# The cases are the run_case lines at the end: one line a case.
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3
DATA=${DATA:-data/cifar-10-batches-bin}
NN=build/bench_embed
if ! $PY -c "import torch" 2>/dev/null; then
    echo "bench-embed: $PY cannot import torch (apt-get install python3-torch)"; exit 1
fi
[ -f "$DATA/data_batch_1.bin" ] || { echo "bench-embed: $DATA/data_batch_1.bin is missing (make data)"; exit 1; }
field() { echo "$1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }
best_of() { echo "$1" | tr ' ' '\n' | sort -g | tail -n 1; }
if [ -n "$MODEL" ]; then
    model=$MODEL
else
    mkdir -p build/embed_bench
    model=build/embed_bench/vgg_random.safetensors
    $NN --save "$model" --data "$DATA" || exit 1
fi
torch_side() {   # torch_side THREADS ARGS...
    t=$1; shift
    OMP_NUM_THREADS=$t OMP_WAIT_POLICY=PASSIVE $PY bench/embed_torch.py --model "$model" --data "$DATA" --threads "$t" "$@"
}
run_case() {   # run_case MODE BATCH THREADS
    mode=$1; batch=$2; threads=$3
    case "$mode batch=$batch threads=$threads" in *"$FILTER"*) ;; *) return ;; esac
    nn_all=""; py_all=""; nn_rss=-; py_rss=0; r=0
    while [ $r -lt "$ROUNDS" ]; do
        line=$($NN --model "$model" --data "$DATA" --mode "$mode" --batch "$batch" --threads "$threads")
        case "$line" in *unsupported*) ;; *) nn_all="$nn_all $(field "$line" median)"; nn_rss=$(field "$line" peak_rss_mb) ;; esac
        line=$(torch_side "$threads" --mode "$mode" --batch "$batch")
        py_all="$py_all $(field "$line" median)"; py_rss=$(field "$line" peak_rss_mb)
        r=$((r + 1))
    done
    py=$(best_of "$py_all")
    if [ -n "$nn_all" ]; then
        nn=$(best_of "$nn_all")
        [ "$mode $batch $threads" = "fp32 1 1" ] && nn_fp32_1=$nn
        printf 'embed vgg %s batch=%d threads=%d nn=%.1f pytorch=%.1f ratio=%.2f nn_rss_mb=%s pytorch_rss_mb=%s\n' \
            "$mode" "$batch" "$threads" "$nn" "$py" "$(echo "$nn $py" | awk '{ print $1 / $2 }')" "$nn_rss" "$py_rss"
    else
        printf 'embed vgg %s batch=%d threads=%d nn=- pytorch=%.1f ratio=- nn_rss_mb=- pytorch_rss_mb=%s\n' \
            "$mode" "$batch" "$threads" "$py" "$py_rss"
    fi
}
nn_or_torch() {   # nn_or_torch KIND MODE: nn.h's figure, or PyTorch's where nn.h has no such mode
    line=$($NN --model "$model" --data "$DATA" --mode "$2" --"$1" $3)
    case "$line" in *unsupported*) line=$(torch_side 1 --mode "$2" --"$1" $3) ;; esac
    echo "$line" | sed -n "s/.* \(bytes\|top1\)=\([0-9.]*\).*/\2/p"
}
FILTER=${1:-}
echo "nn.h, PyTorch $($PY -c 'import torch; print(torch.__version__)'), model $model, $ROUNDS rounds each"
run_case fp32 1 1
run_case int8 1 1
run_case fp32 32 1
run_case int8 32 1
run_case fp32 1 2
run_case int8 1 2
if [ -n "$nn_fp32_1" ]; then
    line=$($NN --limit | tail -n 1)
    echo "$line"
    echo "$nn_fp32_1 $(field "$line" limit_ms)" |
        awk '{ printf "latency vgg fp32 batch=1 threads=1 nn_ms=%.3f limit_ms=%.3f nn/limit=%.2f\n", 1000 / $1, $2, 1000 / $1 / $2 }'
fi
[ -n "$FILTER" ] && exit 0
echo "size vgg fp32=$(nn_or_torch size fp32) int8=$(nn_or_torch size int8)"
if [ -n "$MODEL" ]; then
    int8=$($NN --model "$model" --mode int8 --data "$DATA" --accuracy "$DATA")
    case "$int8" in *unsupported*) int8=- ;; *) int8=$(field "$int8" top1) ;; esac
    echo "accuracy vgg fp32=$(field "$($NN --model "$model" --mode fp32 --accuracy "$DATA")" top1) int8=$int8" \
         "pytorch_int8=$(field "$(torch_side 1 --mode int8 --accuracy "$DATA")" top1)"
fi
