#!/bin/sh
# Before and after: build/bench_train of an earlier commit against the working tree's,
# run alternately case by case (old, new, old, new, ...) so that both see the same
# machine. One line per case with the best median of each side and their ratio:
#   <mode> <model> batch=<b> threads=<t> old=<images/s> new=<images/s> new/old=<ratio>
# Usage: bench/compare.sh COMMIT [case-filter]    (ROUNDS=3 by default)
cd "$(dirname "$0")/.." || exit 1
[ -n "$1" ] || { echo "usage: bench/compare.sh COMMIT [case-filter]"; exit 2; }
OLD=$1; FILTER=${2:-}; ROUNDS=${ROUNDS:-3}
dir=build/compare/$OLD
mkdir -p "$dir/bench" "$dir/examples"
for f in nn.h bench/train.c examples/common.h examples/models.h examples/report.h examples/plot.h; do
    git show "$OLD:$f" > "$dir/$f" 2>/dev/null || true
done
cc -O2 -g -std=c99 -I"$dir" "$dir/bench/train.c" -o "$dir/bench_train" -lm -lpthread || exit 1
make -s build/bench_train || exit 1
field() { echo "$1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }
best_of() { echo "$1" | tr ' ' '\n' | sort -g | tail -n 1; }
run_case() {   # run_case MODE MODEL BATCH THREADS
    case "$1 $2 batch=$3 threads=$4" in *"$FILTER"*) ;; *) return ;; esac
    old_all=""; new_all=""; r=0
    while [ $r -lt "$ROUNDS" ]; do
        line=$("$dir/bench_train" --model "$2" --mode "$1" --batch "$3" --threads "$4")
        old_all="$old_all $(field "$line" median)"
        line=$(build/bench_train --model "$2" --mode "$1" --batch "$3" --threads "$4")
        new_all="$new_all $(field "$line" median)"
        r=$((r + 1))
    done
    old=$(best_of "$old_all"); new=$(best_of "$new_all")
    printf '%s %s batch=%d threads=%d old=%.1f new=%.1f new/old=%.3f\n' "$1" "$2" "$3" "$4" \
        "$old" "$new" "$(echo "$new $old" | awk '{ print $1 / $2 }')"
}
echo "old: $OLD, new: the working tree ($(git rev-parse --short HEAD)), $ROUNDS alternating rounds, best median"
for threads in 1 2; do
    run_case train vgg 32 "$threads"
    run_case infer vgg 32 "$threads"
    run_case train mlp 200 "$threads"
    run_case infer mlp 200 "$threads"
done
