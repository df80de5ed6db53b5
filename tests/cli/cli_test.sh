#!/usr/bin/env bash
# cli_test.sh NNC CASE — one test of the nnc command line.
#
# Each case_NAME function below is a ctest (cli/NAME, registered by
# CMakeLists.txt from this file).  A case runs nnc in a scratch directory
# holding copies of good.nn (a small valid model) and bad.nn (a shape
# error), then checks the exit status (0 success, 1 model or file error,
# 2 command line, never 70 or a crash) and what went to stdout and stderr.
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: cli_test.sh NNC CASE" >&2
    exit 2
fi
nnc=$1 case=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$here/good.nn" "$here/bad.nn" "$tmp/"
cd "$tmp" || exit 1

# run ARGS...: nnc ARGS; stdout to ./out, stderr to ./err, status in $status.
run() {
    "$nnc" "$@" >out 2>err
    status=$?
    last="nnc $*"
}

fail() {
    {
        echo "FAIL: cli/$case: $last: $*"
        echo "--- stdout (status $status):"
        head -c 4000 out
        echo "--- stderr:"
        head -c 4000 err
    } >&2
    exit 1
}

expect_status() { [ "$status" -eq "$1" ] || fail "exit status $status, expected $1"; }
expect_empty() { [ ! -s "$1" ] || fail "$1 should be empty"; }
expect_line() { grep -qxF -- "$2" "$1" || fail "$1 has no line: $2"; }
expect_text() { grep -qF -- "$2" "$1" || fail "$1 does not contain: $2"; }
expect_no_text() { ! grep -qF -- "$2" "$1" || fail "$1 should not contain: $2"; }
count() { grep -cF -- "$2" "$1"; }

# st_data FILE HEADER_JSON: a safetensors file with the data read from
# stdin (the header padded with spaces to a multiple of 8).
st_data() {
    local header=$2
    while [ $((${#header} % 8)) -ne 0 ]; do header="$header "; done
    local n=${#header}
    local len
    len=$(printf '\\x%02x\\x%02x' $((n & 255)) $((n >> 8)))
    # shellcheck disable=SC2059  # $len holds the escapes of the two bytes
    printf "$len\\x00\\x00\\x00\\x00\\x00\\x00" >"$1"
    printf '%s' "$header" >>"$1"
    cat >>"$1"
}

# st_zeros FILE HEADER_JSON NBYTES: the data is NBYTES zero bytes.
st_zeros() { head -c "$3" /dev/zero | st_data "$1" "$2"; }
good_inputs='{"x":{"dtype":"F32","shape":[4,3],"data_offsets":[0,48]},"y":{"dtype":"I32","shape":[4],"data_offsets":[48,64]}}'

# The pipeline as --help lists it, separated by $1 (", " or " ").
pipeline() {
    "$nnc" --help | sed -n '/^Passes, in pipeline order:$/,/^$/p' | sed 1d |
        tr -s ' \n' '  ' | sed 's/^ *//; s/ *$//' | sed "s/ /$1/g"
}

# A wrong command line: status 2, the message, the hint, nothing on stdout.
expect_usage_error() {
    expect_status 2
    expect_empty out
    expect_line err "nnc: error: $1"
    expect_line err "Try 'nnc --help' for more information."
    [ "$(wc -l <err)" -eq 2 ] || fail "expected exactly two lines on stderr"
}

# ---- --version, --help --------------------------------------------------

case_version() {
    run --version
    expect_status 0
    expect_empty err
    grep -qxE 'nnc [0-9]+\.[0-9]+\.[0-9]+' out || fail "not 'nnc X.Y.Z'"
    [ "$(wc -l <out)" -eq 1 ] || fail "more than one line"
}

case_help() {
    run --help
    expect_status 0
    expect_empty err
    expect_text out "usage: nnc MODEL.nn -o OUT.o [options]"
    expect_text out "nnc check MODEL.nn [-D NAME=INT]..."
    expect_text out "nnc run MODEL.nn"
    local opt
    for opt in "-o PATH" "--header PATH" "-D NAME=INT" "-O0 ... -O3" "--target TRIPLE" \
               "--cpu NAME" "--emit obj|asm|llvm|ir|dot|stats" "--dump-after PASS|all" \
               "--dump-before PASS|all" "--stop-after PASS" "--verify-each" "--time-passes" \
               "--no-fuse" "--no-train" "--passes" "--ir-in" "--params" "--seed N" \
               "--inputs" "--outputs" "--grads" "--train-steps N" "--save" "--version"; do
        expect_text out "  $opt"
    done
    grep -qx 'Passes, in pipeline order:' out ||
        fail "no 'Passes, in pipeline order:' heading"
    pipeline ' ' | grep -qE '^([a-z-]+ )*cse( [a-z-]+)* dce( [a-z-]+)*$' ||
        fail "no pipeline listing cse, then dce"
    run check good.nn --help
    expect_status 0
    expect_text out "usage: nnc"
}

# ---- wrong command lines: status 2 ----------------------------------------

case_no_arguments() {
    run
    expect_usage_error "no model file given"
}

case_unknown_option() {
    run good.nn --emit ir --bogus
    expect_usage_error "unknown option '--bogus'"
    run check good.nn -x
    expect_usage_error "unknown option '-x'"
}

case_bad_define() {
    run check good.nn -D B
    expect_usage_error "-D B: expected NAME=INT, NAME a dim name"
    run check good.nn -DB=four
    expect_usage_error "-D B=four: 'four' is not an integer"
    run check good.nn -D B=0
    expect_usage_error "-D B=0: a dim must be a positive integer"
    run check good.nn -D
    expect_usage_error "option '-D' needs a value: -D NAME=INT"
}

case_bad_option_values() {
    run good.nn --emit exe
    expect_usage_error "--emit exe: expected obj, asm, llvm, ir, dot or stats"
    run good.nn -O5 --emit ir
    expect_usage_error "-O5: expected -O0, -O1, -O2 or -O3"
    run good.nn --emit ir --passes cse,nope
    expect_usage_error "--passes: unknown pass 'nope' (passes: $(pipeline ', '))"
    run good.nn --emit ir --dump-after nope
    expect_usage_error "--dump-after: unknown pass 'nope' (passes: $(pipeline ', '), or all)"
    run check good.nn -o good.o
    expect_usage_error "nnc check does not take option '-o'"
    run good.nn --seed 3
    expect_usage_error "option '--seed' is only for nnc run"
}

# --grads and --train-steps need the training API, and the inputs.
case_run_training_requests() {
    run run good.nn --no-train --grads g.safetensors
    expect_usage_error "--no-train cannot be used with --grads: it compiles no backward pass"
    run run good.nn --train-steps 0 --no-train
    expect_usage_error "--no-train cannot be used with --train-steps: it compiles no backward pass"
    printf 'input x : f32[2]\nparam w : f32[2] = ones\ny = x * w\noutput y\n' >notrain.nn
    run run notrain.nn --train-steps 1
    expect_usage_error "--train-steps needs a model with \`train\`; model 'notrain' has none"
    run run good.nn --passes none --grads g.safetensors
    expect_usage_error "--grads needs gradients, and no pass computed them for model 'good'"
    run run --ir-in "$here/../e2e/lin_grads.ir" --grads g.safetensors
    expect_usage_error "--grads needs --inputs: model 'lin' has inputs x, t"
    sed -e 's/param W /param loss /; s/@W /@loss /; s/grad\.W=/grad.loss=/' \
        "$here/../e2e/lin_grads.ir" >loss_param.ir
    run run --ir-in loss_param.ir --grads g.safetensors
    expect_usage_error "--grads: the model has a parameter named 'loss', the name the gradient file gives the loss"
    [ ! -e g.safetensors ] || fail "wrote g.safetensors"
}

# --seed keys dropout in training even when --params replaces the initial
# values: the same seed gives the same gradients, another seed others.
case_run_seed_keys_dropout() {
    printf '%s\n' 'input x : f32[4, 3]' 'input y : i32[4]' \
        'param W : f32[3, 8] = xavier_uniform' 'param V : f32[8, 2] = xavier_uniform' \
        'logits = dropout(relu(x @ W), 0.5) @ V' 'loss = cross_entropy(logits, y)' \
        'output logits' 'train loss with sgd(lr = 0.1)' >drop.nn
    # x: twelve 1.0f, y: four 0
    { for _ in $(seq 12); do printf '\x00\x00\x80\x3f'; done; head -c 16 /dev/zero; } |
        st_data in.safetensors "$good_inputs"
    run run drop.nn --seed 9 --save p.safetensors
    expect_status 0
    local s
    for s in 1 1b 2; do
        run run drop.nn --params p.safetensors --inputs in.safetensors --seed "${s%b}" \
            --grads "g$s.safetensors"
        expect_status 0
        expect_empty err
    done
    cmp -s g1.safetensors g1b.safetensors || fail "the same seed gave other gradients"
    cmp -s g1.safetensors g2.safetensors && fail "seeds 1 and 2 gave the same dropout masks"
    return 0
}

case_header_overwrites_output() {
    run good.nn -o good.h
    expect_usage_error "the header would overwrite the output 'good.h'; name another with --header"
    [ ! -e good.h ] || fail "wrote good.h"
    run good.nn -o x.o --header x.o
    expect_usage_error "the header would overwrite the output 'x.o'; name another with --header"
}

case_run_needs_inputs() {
    run run good.nn --outputs out.safetensors
    expect_usage_error "--outputs needs --inputs: model 'good' has inputs x, y"
    [ ! -e out.safetensors ] || fail "wrote out.safetensors"
}

# ---- files: status 1 ------------------------------------------------------

case_missing_file() {
    run check nope.nn
    expect_status 1
    expect_empty out
    expect_line err "nnc: error: cannot open 'nope.nn': No such file or directory"
    run nope.nn --emit ir
    expect_status 1
}

case_directory() {
    mkdir dir.nn
    run check dir.nn
    expect_status 1
    expect_line err "nnc: error: cannot read 'dir.nn': Is a directory"
}

case_too_big() {
    truncate -s $((64 * 1024 * 1024 + 1)) big.nn || fail "cannot make a big file"
    run check big.nn
    expect_status 1
    expect_line err "nnc: error: cannot read 'big.nn': the file is larger than 64 MiB"
}

case_unwritable_output() {
    run good.nn --emit ir -o no/such/dir/good.ir
    expect_status 1
    expect_line err "nnc: error: cannot write 'no/such/dir/good.ir': No such file or directory"
    run good.nn -o no/such/dir/good.o
    expect_status 1
    expect_empty out
    expect_line err "nnc: error: cannot write 'no/such/dir/good.o': No such file or directory"
    run good.nn --emit llvm -o no/such/dir/good.ll
    expect_status 1
    expect_line err "nnc: error: cannot write 'no/such/dir/good.ll': No such file or directory"
}

# An unwritable header fails the command and takes the new object with it.
case_unwritable_header() {
    run good.nn -o good.o --header no/such/dir/good.h
    expect_status 1
    expect_line err "nnc: error: cannot write 'no/such/dir/good.h': No such file or directory"
    [ ! -e good.o ] || fail "left good.o without its header"
}

# A write that fails midway (/dev/full): status 1 and the reason, in
# nnc's words (code is generated in memory and written by nnc, never
# LLVM's fatal "LLVM ERROR: IO failure on output stream").
case_disk_full() {
    [ -c /dev/full ] || { echo "no /dev/full: nothing to test"; return; }
    local args
    for args in "-o /dev/full" "--emit llvm -o /dev/full" "--emit asm -o /dev/full" \
        "--emit ir -o /dev/full" "-o good.o --header /dev/full"; do
        # shellcheck disable=SC2086  # args is a list of words
        run good.nn $args
        expect_status 1
        expect_empty out
        expect_line err "nnc: error: cannot write '/dev/full': No space left on device"
        expect_no_text err "LLVM ERROR"
    done
    [ ! -e good.o ] || fail "left good.o without its header"
}

# An object whose write fails partway (a 4 KiB file size limit; the
# object is larger) leaves the previous object byte for byte and no
# temporary: it is written beside the target and renamed into place.
case_failed_write_keeps_object() {
    run good.nn -o good.o
    expect_status 0
    cp good.o before.o
    status=0
    (trap '' XFSZ && ulimit -f 4 && exec "$nnc" good.nn -O0 -o good.o >out 2>err) ||
        status=$?
    last="nnc good.nn -O0 -o good.o (ulimit -f 4)"
    expect_status 1
    expect_line err "nnc: error: cannot write 'good.o': File too large"
    expect_no_text err "LLVM ERROR"
    cmp -s good.o before.o || fail "good.o changed"
    [ -z "$(find . -name '.good.o.tmp-*')" ] || fail "left a temporary behind"
    run good.nn -o /dev/null --header good2.h
    expect_status 0
    [ -c /dev/null ] || fail "/dev/null is no longer a device"
}

# An unknown --cpu is a command-line error (status 2) found before any
# code is generated, for the host and for a cross target (LLVM itself
# would only warn, then abort on x86-64).
case_unknown_cpu() {
    run good.nn --cpu nosuchcpu -o x.o
    expect_status 2
    expect_empty out
    expect_line err "nnc: error: unknown CPU 'nosuchcpu' for target '$("$nnc" --emit llvm good.nn |
        sed -n 's/^target triple = "\(.*\)"$/\1/p')'"
    [ "$(wc -l <err)" -eq 1 ] || fail "expected exactly one line on stderr"
    [ ! -e x.o ] || fail "wrote x.o"
    [ ! -e x.h ] || fail "wrote x.h"
    run good.nn --target aarch64-linux-gnu --cpu nosuchcpu --emit asm -o -
    expect_status 2
    expect_empty out
    expect_line err "nnc: error: unknown CPU 'nosuchcpu' for target 'aarch64-linux-gnu'"
    run good.nn --target aarch64-linux-gnu --cpu cortex-a72 --emit asm -o good.s
    expect_status 0
    expect_empty err
    run good.nn --cpu x86-64-v3 --emit asm -o good.s
    expect_status 0
    expect_empty err
}

case_unknown_target() {
    run good.nn --target nosuch-unknown-none -o x.o
    expect_status 1
    expect_empty out
    expect_text err "nnc: error: unknown target 'nosuch-unknown-none'"
    [ ! -e x.o ] || fail "wrote x.o"
    [ ! -e x.h ] || fail "wrote x.h"
}

# A model with an error never reaches the code generator.
case_bad_model_writes_nothing() {
    run bad.nn -o bad.o
    expect_status 1
    grep -qE '^bad\.nn:5:[0-9]+: error: ' err || fail "no located error on line 5"
    [ ! -e bad.o ] || fail "wrote bad.o"
    [ ! -e bad.h ] || fail "wrote bad.h"
    run bad.nn --emit llvm
    expect_status 1
    expect_empty out
}

# expect_file_error LINE: a runtime file error: status 1, LINE on stderr.
expect_file_error() {
    expect_status 1
    expect_empty out
    expect_line err "$1"
}

# Saving renames a new file over the target, which would replace a pipe or
# a device (as root, /dev/null) rather than write to it: refused, status 1.
case_run_refuses_special_files() {
    mkfifo pipe || fail "cannot make a FIFO"
    st_zeros in.safetensors "$good_inputs" 64
    local opt
    for opt in --save --outputs --grads; do
        run run good.nn --inputs in.safetensors "$opt" pipe
        expect_status 1
        expect_line err "nnc: error: cannot write 'pipe': not a regular file (files are saved by renaming a new file over the old one)"
        [ -p pipe ] || fail "$opt replaced the FIFO"
    done
}

case_run_file_errors() {
    run run good.nn --params nope.safetensors
    expect_file_error "nope.safetensors: error: cannot open: No such file or directory"
    printf 'not a safetensors file' >junk.safetensors
    run run good.nn --params junk.safetensors
    expect_status 1
    expect_text err "junk.safetensors: error: "
    st_zeros x_only.safetensors '{"x":{"dtype":"F32","shape":[4,3],"data_offsets":[0,48]}}' 48
    run run good.nn --inputs x_only.safetensors --outputs o.safetensors
    expect_file_error "x_only.safetensors: error: tensor 'y': missing from the file"
    [ ! -e o.safetensors ] || fail "wrote o.safetensors"
    st_zeros in.safetensors "$good_inputs" 64
    run run good.nn --inputs in.safetensors --outputs no/such/dir/o.safetensors
    expect_status 1
    expect_text err "no/such/dir/o.safetensors: error: "
    run run good.nn --save no/such/dir/p.safetensors
    expect_status 1
    expect_text err "no/such/dir/p.safetensors: error: "
}

case_check_bad_model() {
    run check bad.nn
    expect_status 1
    expect_empty out
    grep -qE '^bad\.nn:5:[0-9]+: error: ' err || fail "no located error on line 5"
    run bad.nn --emit ir
    expect_status 1
    expect_empty out
}

case_check_unused_define() {
    run check good.nn -D NOPE=3
    expect_status 1
    expect_empty out
    expect_text err "NOPE"
}

case_ir_in_bad_file() {
    printf 'model m\n\ngraph main {\n  %%0 = nosuchop : f32[]\n  return\n}\n' >bad.ir
    run --ir-in bad.ir --emit ir
    expect_status 1
    expect_empty out
    grep -qE '^bad\.ir:[0-9]+:[0-9]+: error: ' err || fail "no located error"
    run --ir-in good.nn --emit ir
    expect_status 1
    grep -qE '^good\.nn:[0-9]+:[0-9]+: error: ' err || fail "no located error"
}

# ---- success: status 0 ----------------------------------------------------

case_check_good_model() {
    run check good.nn
    expect_status 0
    expect_empty out
    expect_empty err
    run check good.nn -D B=1 -DH=16
    expect_status 0
    expect_empty out
    expect_empty err
}

case_emit_ir() {
    run good.nn --emit ir
    expect_status 0
    expect_empty err
    expect_line out "model good"
    expect_text out "graph main {"
    cp out first.ir
    run good.nn --emit ir -o good.ir
    expect_status 0
    expect_empty out
    expect_empty err
    cmp -s first.ir good.ir || fail "-o good.ir differs from stdout"
    run good.nn --emit ir -o -
    expect_status 0
    cmp -s first.ir out || fail "-o - differs from stdout"
    [ ! -e ./- ] || fail "-o - wrote a file named -"
    run good.nn --emit ir -D B=2
    expect_text out "f32[2, 3]"
}

case_emit_dot() {
    run good.nn --emit dot
    expect_status 0
    expect_empty err
    head -n 1 out | grep -q '^digraph' || fail "does not begin with digraph"
    run good.nn --emit=dot -o good.dot
    expect_status 0
    expect_empty out
    head -n 1 good.dot | grep -q '^digraph' || fail "good.dot does not begin with digraph"
}

# The pipeline merges the second x @ W1 + b1 (CSE) and keeps the IR valid.
# (--no-train: no backward graph, whose matmuls would be counted too.)
case_pipeline_merges_duplicates() {
    run good.nn --emit ir --passes none
    expect_status 0
    [ "$(count out '= matmul')" -eq 3 ] || fail "expected 3 matmuls before the passes"
    run good.nn --emit ir --verify-each --no-train
    expect_status 0
    expect_empty err
    [ "$(count out '= matmul')" -eq 2 ] || fail "expected 2 matmuls after the pipeline"
}

case_dump_after_all() {
    run good.nn --emit ir --dump-after all
    expect_status 0
    local passes n last p
    read -ra passes <<<"$(pipeline ' ')"
    n=${#passes[@]}
    last=${passes[n - 1]}
    for p in "${passes[@]}"; do
        [ "$(count err "; *** IR after $p ***")" -eq 1 ] || fail "one dump after $p expected"
    done
    [ "$(count err '; *** IR')" -eq "$n" ] || fail "$n dumps expected"
    [ "$(count err 'model good')" -eq "$n" ] || fail "each dump is a whole module"
    # the last dump is what --emit ir prints
    sed -n "/^; \\*\\*\\* IR after $last \\*\\*\\*\$/,\$p" err | tail -n +2 >after_last.ir
    cmp -s after_last.ir out || fail "the dump after $last differs from --emit ir"
}

case_dump_before() {
    run good.nn --emit ir --dump-before dce
    expect_status 0
    expect_line err "; *** IR before dce ***"
    [ "$(count err '; *** IR')" -eq 1 ] || fail "one dump expected"
    run good.nn --emit ir --passes cse,dce --dump-before all --dump-after cse
    [ "$(count err '; *** IR')" -eq 3 ] || fail "three dumps expected"
    grep -F '; *** IR' err >order
    printf '; *** IR before cse ***\n; *** IR after cse ***\n; *** IR before dce ***\n' >want
    cmp -s order want || fail "dumps out of order"
}

case_time_passes() {
    run good.nn --emit ir --time-passes
    expect_status 0
    expect_text err "pass timing"
    grep -qE '^  cse +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]%$' err || fail "no time for cse"
    grep -qE '^  dce +[0-9]+\.[0-9]+ +[0-9]+\.[0-9]%$' err || fail "no time for dce"
    grep -qE '^  total +[0-9]+\.[0-9]+ +100\.0%$' err || fail "no total"
    run good.nn --emit ir --time-passes --passes dce,dce
    [ "$(grep -cE '^  dce ' err)" -eq 2 ] || fail "one row per pass run"
}

# Stopping after cse runs the pipeline up to cse and nothing after.
case_stop_after() {
    run good.nn --emit ir --stop-after cse --dump-after all --time-passes
    expect_status 0
    expect_line err "; *** IR after cse ***"
    expect_no_text err "; *** IR after dce ***"
    expect_no_text err "  dce "
    cp out stopped.ir
    local upto
    upto=$(pipeline , | sed 's/\(.*\<cse\>\).*/\1/')
    run good.nn --emit ir --passes "$upto"
    cmp -s stopped.ir out || fail "--stop-after cse differs from --passes $upto"
}

# --emit ir prints text that --ir-in reads back to the same text.
case_ir_round_trip() {
    run good.nn --emit ir --passes none -o front.ir
    expect_status 0
    run --ir-in front.ir --emit ir --passes none
    expect_status 0
    expect_empty err
    cmp -s front.ir out || fail "--ir-in of --emit ir does not print the same IR"
    run check --ir-in front.ir
    expect_status 0
    expect_empty out
    expect_empty err
    run --ir-in front.ir -D B=2 --emit ir
    expect_usage_error "-D cannot be used with --ir-in: the dims of text IR are fixed"
}

is_elf_object() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

case_emit_obj() {
    run good.nn -o good.o
    expect_status 0
    expect_empty out
    expect_empty err
    is_elf_object good.o || fail "good.o is not an ELF file"
    expect_text good.h "int good_forward(good *m, const float *x, float *logits);"
    expect_text good.h "#include \"nnc.h\""
    mkdir -p build/include
    run good.nn -D B=2 -O0 -o build/model.o --header build/include/api.h
    expect_status 0
    is_elf_object build/model.o || fail "build/model.o is not an ELF file"
    expect_text build/include/api.h "f32[2, 3]"
    [ ! -e build/model.h ] || fail "wrote build/model.h despite --header"
    run good.nn -o noext
    expect_status 0
    if [ ! -s noext ] || [ ! -s noext.h ]; then fail "-o noext: expected noext and noext.h"; fi
    rm -f good.h
    run good.nn -o -
    expect_status 0
    expect_empty err
    is_elf_object out || fail "-o - did not write the object to stdout"
    if [ -e ./- ] || [ -e ./-.h ] || [ -e good.h ]; then fail "-o - wrote a file"; fi
}

# Without -o the object goes to MODEL's stem in the current directory.
case_emit_obj_default_name() {
    mkdir sub
    mv good.nn sub/
    run sub/good.nn -O3
    expect_status 0
    is_elf_object good.o || fail "no ./good.o"
    [ -s good.h ] || fail "no ./good.h"
    [ ! -e sub/good.o ] || fail "wrote sub/good.o"
}

case_emit_llvm() {
    run good.nn --emit llvm
    expect_status 0
    expect_empty err
    expect_text out "define i32 @good_forward("
    expect_text out "target triple = "
    expect_text out "target datalayout = "
    [ ! -e good.h ] || fail "--emit llvm wrote a header without --header"
    run good.nn --emit llvm -O0 -o good.ll --header good.h
    expect_status 0
    expect_empty out
    expect_text good.ll "define i32 @good_forward("
    expect_text good.h "good_forward"
}

case_emit_asm() {
    run good.nn --emit asm
    expect_status 0
    expect_empty err
    expect_line out "good_forward:"
    run good.nn --emit asm --target aarch64-linux-gnu -o good.s
    expect_status 0
    expect_line good.s "good_forward:"
    grep -qE '^\s+ret$' good.s || fail "no AArch64 ret in good.s"
    grep -qE '\bx0\b' good.s || fail "no AArch64 register x0 in good.s"
    run good.nn --emit asm --cpu generic -o generic.s
    expect_status 0
    expect_line generic.s "good_forward:"
}

# All-zero inputs: relu(b1) * sigmoid(b1) @ W2 with b1 = 0 gives zero
# logits, so the output file is known byte for byte after its header.
case_run_outputs() {
    st_zeros in.safetensors "$good_inputs" 64
    run run good.nn --seed 3 --inputs in.safetensors --outputs out.safetensors
    expect_status 0
    expect_empty out
    expect_empty err
    expect_text out.safetensors '"logits":{"dtype":"F32","shape":[4,2],"data_offsets":[0,32]}'
    [ "$(tail -c 32 out.safetensors | od -An -v -tx1 | tr -d ' \n')" = \
      "$(printf '0%.0s' {1..64})" ] || fail "logits are not all zero"
}

# Parameters: the seed decides them (default 0); --params then --save
# writes the same file back.
case_run_params() {
    run run good.nn --save p3.safetensors --seed 3
    expect_status 0
    expect_empty out
    expect_empty err
    expect_text p3.safetensors '"W1":{"dtype":"F32","shape":[3,8]'
    run run good.nn --params p3.safetensors --save copy.safetensors
    expect_status 0
    cmp -s p3.safetensors copy.safetensors || fail "load + save changed the parameters"
    run run good.nn --save p0.safetensors
    run run good.nn --seed 0 --save p0b.safetensors
    cmp -s p0.safetensors p0b.safetensors || fail "the default seed is not 0"
    cmp -s p0.safetensors p3.safetensors && fail "seeds 0 and 3 give the same parameters"
    run run good.nn -D B=2 -O0 --no-fuse --no-train --save p3b.safetensors --seed 3
    expect_status 0
    cmp -s p3.safetensors p3b.safetensors || fail "B, -O0 or --no-train changed the parameters"
}

case_flags_accepted() {
    run good.nn --emit ir -O0 --no-fuse --no-train --target x86_64-linux-gnu --cpu native \
        --verify-each
    expect_status 0
    expect_empty err
    expect_line out "model good"
}

if ! declare -F "case_$case" >/dev/null; then
    echo "cli_test.sh: no case '$case'" >&2
    exit 2
fi
"case_$case"
echo "ok: cli/$case"
