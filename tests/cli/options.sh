#!/usr/bin/env bash
# The CLI's option conventions (llama.cpp's): long forms of the short options, --opt=value, a
# single-valued option given twice refused in one line, repeatable ones (--image) accepted, the
# prompt from -f FILE or from stdin with -p -, and --seed -1 drawing a seed that is reported.
set -u
bin=${MODES_BIN:-build/modes}
tests=${MODES_TESTS:-tests}
model=$tests/../models/shapes-vqa
img=$model/data/images/calib-00001.png
img2=$model/data/images/calib-00002.png
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
# expect_usage NEEDLE COMMAND...: exit status 1, one line on stderr holding NEEDLE
expect_usage() {
    local needle=$1
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -qF -- "$needle" "$tmp/err"
    local s=$?
    check "refused: $* ($needle)" $s
    [ $s -eq 0 ] || cat "$tmp/err"
}

q="What color is the shape?"
"$bin" run -m "$model" -p "$q" --image "$img" -n 4 -t 1 --json >"$tmp/short" 2>&1
check "run with short options" $?
"$bin" run --model "$model" --prompt "$q" --image="$img" --n-predict 4 --threads 1 --json >"$tmp/long" 2>&1
check "run with long options" $?
"$bin" run --model="$model" --prompt="$q" --image "$img" --n-predict=4 --threads=1 --json >"$tmp/eq" 2>&1
check "run with --opt=value" $?
ids() { sed -E 's/.*"ids": \[([^]]*)\].*/\1/' "$1"; }
[ -n "$(ids "$tmp/short")" ] && [ "$(ids "$tmp/short")" = "$(ids "$tmp/long")" ] && [ "$(ids "$tmp/short")" = "$(ids "$tmp/eq")" ]
check "short, long and --opt=value forms give the same answer" $?

# every command's long forms are parsed as its short ones
"$bin" preprocess --model "$model" --image "$img" --output="$tmp/pre.safetensors" >/dev/null 2>&1
check "preprocess --model --image --output=" $?
echo '{"text": "red"}' | "$bin" tokenize --model="$model" >"$tmp/tok" 2>&1 && grep -q '"ids"' "$tmp/tok"
check "tokenize --model=" $?
expect_usage "--threads must be an integer" "$bin" bench --synthetic qwen3-vl-30b-a3b --threads=x
expect_usage "-o/--output needs a value" "$bin" calibrate --model "$model" --output
expect_usage "unknown option '--models=$model'" "$bin" run --models="$model" -p x
expect_usage "unknown option '-m=$model'" "$bin" run -m="$model" -p x

# single-valued options given twice are refused, whatever their forms; --image repeats
expect_usage "-p/--prompt given twice" "$bin" run -m "$model" -p a -p b
expect_usage "-p/--prompt given twice" "$bin" run -m "$model" -p a --prompt=b
expect_usage "-m/--model given twice" "$bin" run -m "$model" --model "$model" -p a
expect_usage "-n/--n-predict given twice" "$bin" eval -m "$model" --bench x -n 1 -n 2
expect_usage "-t/--threads given twice" "$bin" bench --synthetic qwen3-vl-30b-a3b -t 1 --threads 2
"$bin" run -m "$model" -p -p -n 1 -t 1 >/dev/null 2>"$tmp/err"
check "-p -p: the second is the first's value, not a repeat" $?
"$bin" run -m "$model" -p "$q" --image "$img" --image "$img2" -n 2 -t 1 >/dev/null 2>"$tmp/err"
check "--image twice is two images" $?

# the prompt from a file and from stdin
printf '%s\n' "$q" >"$tmp/q.txt"
"$bin" run -m "$model" -f "$tmp/q.txt" --image "$img" -n 4 -t 1 --json >"$tmp/file" 2>&1
[ "$(ids "$tmp/file")" = "$(ids "$tmp/short")" ]
check "-f FILE answers as -p TEXT" $?
printf '%s\n' "$q" | "$bin" run -m "$model" -p - --image "$img" -n 4 -t 1 --json >"$tmp/stdin" 2>&1
[ "$(ids "$tmp/stdin")" = "$(ids "$tmp/short")" ]
check "-p - reads the prompt from stdin" $?
expect_usage "-p/--prompt and -f/--file both give the prompt" "$bin" run -m "$model" -p x -f "$tmp/q.txt"
expect_usage "$tmp/none.txt" "$bin" run -m "$model" -f "$tmp/none.txt"

# --seed -1: a random seed, reported; the reported seed reproduces the run
seed_of() { sed -E 's/.*"seed": ([0-9]+).*/\1/' "$1"; }
"$bin" run -m "$model" -p "$q" -n 6 -t 1 --temp 5 --seed -1 --json >"$tmp/r1" 2>&1
"$bin" run -m "$model" -p "$q" -n 6 -t 1 --temp 5 --seed -1 --json >"$tmp/r2" 2>&1
s1=$(seed_of "$tmp/r1") s2=$(seed_of "$tmp/r2")
[[ "$s1" =~ ^[0-9]+$ ]] && [[ "$s2" =~ ^[0-9]+$ ]] && [ "$s1" != "$s2" ]
check "--seed -1 draws a different seed each run, reported in --json ($s1, $s2)" $?
"$bin" run -m "$model" -p "$q" -n 6 -t 1 --temp 5 --seed "$s1" --json >"$tmp/r3" 2>&1
[ "$(ids "$tmp/r1")" = "$(ids "$tmp/r3")" ]
check "--seed with the reported seed reproduces the answer" $?
"$bin" run -m "$model" -p "$q" -n 2 -t 1 --temp 1 --seed 7 --stats >/dev/null 2>"$tmp/stats"
grep -qx "seed 7" "$tmp/stats"
check "--stats reports the seed" $?
"$bin" run -m "$model" -p "$q" -n 2 -t 1 --seed 7 --stats >/dev/null 2>"$tmp/stats"
! grep -q "^seed" "$tmp/stats"
check "--stats of a greedy answer names no seed (it uses none)" $?
expect_usage "--seed must be an integer in [-1," "$bin" run -m "$model" -p x --seed -2

exit $fail
