#!/bin/sh
# make bench-speedrun: one epoch of the airbench94 recipe (examples/speedrun.c's net, batch
# 1024), nn.h (build/bench_speedrun) against PyTorch (bench/speedrun_torch.py, Debian's
# /usr/bin/python3 with python3-torch), alternately, so both see the same machine.
# STEPS steps are timed after one warm-up step and scaled to the epoch's 48 (a full epoch
# takes minutes per side on two cores); ROUNDS alternations, the best of each side counts.
#   STEPS=3 THREADS=2 ROUNDS=1 bench/speedrun.sh
# prints
#   speedrun epoch nn=<s> pytorch=<s> ratio=<pytorch/nn> threads=<t> (<n> steps timed, scaled to 48)
cd "$(dirname "$0")/.." || exit 1
STEPS=${STEPS:-3}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
PY=/usr/bin/python3
if ! $PY -c "import torch" 2>/dev/null; then
    echo "bench-speedrun: $PY cannot import torch (apt-get install python3-torch)"; exit 1
fi
field() { echo "$1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }
best() { echo "$1" | tr ' ' '\n' | grep . | sort -g | head -n 1; }   # the smallest
nn_all=""; py_all=""; r=0
while [ $r -lt "$ROUNDS" ]; do
    line=$(build/bench_speedrun --steps "$STEPS" --threads "$THREADS") || { echo "bench-speedrun: nn.h failed"; exit 1; }
    echo "  $line"
    nn_all="$nn_all $(field "$line" epoch_seconds)"
    line=$(OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE $PY bench/speedrun_torch.py --steps "$STEPS" \
           --threads "$THREADS") || { echo "bench-speedrun: PyTorch failed"; exit 1; }
    echo "  $line"
    py_all="$py_all $(field "$line" epoch_seconds)"
    r=$((r + 1))
done
nn=$(best "$nn_all"); py=$(best "$py_all")
printf 'speedrun epoch nn=%.1f pytorch=%.1f ratio=%.2f threads=%d (%d steps timed, scaled to 48)\n' \
    "$nn" "$py" "$(echo "$nn $py" | awk '{ print $2 / $1 }')" "$THREADS" "$STEPS"
