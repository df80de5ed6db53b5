#!/usr/bin/env bash
# smoke_test.sh DEMO WORKDIR TRAIN_PROGRAM [SAMPLE_PROGRAM]
#
# Runs one training demo built at tiny sizes (tests/demos/CMakeLists.txt)
# for a few dozen steps on the real data and checks what it prints: the
# held-out loss after training ("... loss after training: X") is below
# the one before ("... loss before training: Y") by at least 10%.  For the
# language models it then runs the sampler on the saved parameters and
# checks that it printed text between its "---" lines.
set -euo pipefail
demo=$1 work=$2 train=$3 sample=${4:-}
params=$work/smoke_$demo.safetensors
log=$work/smoke_$demo.log

case $demo in
digits) args=(--steps 200 --lr 0.01 --print-every 50) ;;
charlm) args=(--steps 60 --lr 0.02 --print-every 20 --params "$params") ;;
gpt) args=(--steps 60 --lr 0.01 --print-every 20 --params "$params") ;;
*) echo "smoke_test: unknown demo '$demo'" >&2; exit 2 ;;
esac

"$train" "${args[@]}" --threads 1 | tee "$log"
loss_of() { sed -n "s/.*loss $1 training: \([0-9.]*\).*/\1/p" "$log" | head -1; }
before=$(loss_of before) after=$(loss_of after)
[ -n "$before" ] && [ -n "$after" ] || {
    echo "smoke_test: $demo printed no loss before and after training" >&2
    exit 1
}
awk -v b="$before" -v a="$after" 'BEGIN { exit !(a < 0.9 * b) }' || {
    echo "smoke_test: $demo: loss $before -> $after did not fall by 10%" >&2
    exit 1
}
echo "smoke_test: $demo: held-out loss $before -> $after"

if [ -n "$sample" ]; then
    text=$("$sample" --params "$params" --length 40 --prompt "The ")
    printf '%s\n' "$text"
    body=$(printf '%s\n' "$text" | sed -n '2,/^---$/p' | sed '$d')
    chars=$(printf '%s' "$body" | wc -c)
    # The prompt and 40 sampled bytes, less what the shell drops: trailing
    # newlines, and a NUL byte the barely trained GPT may draw.
    [ "$chars" -ge 30 ] || {
        echo "smoke_test: $demo: sampler printed $chars bytes, want 44" >&2
        exit 1
    }
    echo "smoke_test: $demo: sampler generated text"
fi
