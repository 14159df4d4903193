#!/usr/bin/env bash
# modes chat on the embedded model with greedy decoding, lines piped in: each message is prefilled
# on top of the conversation (the cache grows by the new turn only), the first answer is what
# `modes run` answers, slash commands work, bad commands are reported and the chat goes on, and a
# full context is said and survived.
set -u
bin=${MODES_BIN:-build/modes}
tests=${MODES_TESTS:-tests}
model=$tests/../models/shapes-vqa
img=$model/data/images/calib-00001.png
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
# field NAME LINE: the number before NAME's unit in a /stats line ("context 113 of", "prefilled 112 tokens")
field() { sed -E "s/.*$1 ([0-9]+).*/\\1/" <<<"$2"; }

q1="What shape is in the picture?"
printf '%s\n/stats\nWhat color is it?\n/stats\n/exit\nnot a message\n' "$q1" |
    "$bin" chat -m "$model" --image "$img" -t 1 >"$tmp/out" 2>"$tmp/err"
check "two turns, /stats, /exit: exit status 0" $?
cat "$tmp/out"
mapfile -t lines <"$tmp/out"
[ "${#lines[@]}" -eq 4 ]
check "two answers and two /stats lines, nothing after /exit (${#lines[@]} lines)" $?
"$bin" run -m "$model" --image "$img" -p "$q1" -t 1 >"$tmp/run" 2>&1
[ "${lines[0]}" = "$(cat "$tmp/run")" ]
check "the first answer is modes run's ('${lines[0]}')" $?
s1=${lines[1]} s2=${lines[3]}
c1=$(field context "$s1") c2=$(field context "$s2") p1=$(field prefilled "$s1") p2=$(field prefilled "$s2")
g2=$(field generated "$s2")
[ "$c2" -gt "$c1" ] && [ "$c2" -eq $((p2 + g2)) ]
check "the cache grows with each turn and holds every prefilled and generated id ($c1 -> $c2 = $p2 + $g2)" $?
[ $((p2 - p1)) -gt 0 ] && [ $((p2 - p1)) -lt "$c1" ]
check "turn 2 prefilled only its own $((p2 - p1)) ids, not the $c1 of the conversation before it" $?
grep -q '^turns 2 ' <<<"$s2"
check "/stats counts the turns" $?

# the cache must be the conversation: after /reset the same question gets the same answer
printf '%s\n/reset\n/stats\n/image %s\n%s\n' "$q1" "$img" "$q1" | "$bin" chat -m "$model" --image "$img" -t 1 >"$tmp/out" 2>&1
mapfile -t lines <"$tmp/out"
[ "${#lines[@]}" -eq 3 ] && [ "${lines[0]}" = "${lines[2]}" ] && grep -q '^turns 0 | context 0 of' <<<"${lines[1]}"
check "/reset empties the cache; /image attaches to the next message" $?

# skipping switched during the chat
printf '/skip topk:1\nWhat color?\n/stats\n/policy %s\nWhat shape?\n/skip none\n/stats\n' "$model/policy-88.json" |
    "$bin" chat -m "$model" -t 1 >"$tmp/out" 2>"$tmp/err"
check "/skip and /policy: exit status 0" $?
sk=$(grep '^turns 1 ' "$tmp/out" | sed -E 's/.*skipped: prefill ([0-9.]+)%.*/\1/')
[ -n "$sk" ] && awk -v s="$sk" 'BEGIN { exit !(s > 0) }'
check "/skip topk:1 skips experts ($sk% of the prefill)" $?

# errors are reported in one line each and the chat goes on
printf '/frobnicate\n/image %s/none.png\n/skip bogus:1\n/policy %s/none.json\nWhat color?\n' "$tmp" "$tmp" |
    "$bin" chat -m "$model" -t 1 >"$tmp/out" 2>"$tmp/err"
check "bad commands: exit status 0" $?
[ "$(wc -l <"$tmp/err")" -eq 4 ] && grep -q 'unknown command /frobnicate' "$tmp/err" && grep -q 'none.png' "$tmp/err" &&
    [ "$(wc -l <"$tmp/out")" -eq 1 ]
check "four one-line errors, then the message is answered" $?
cat "$tmp/err"

# a context that fills up: the chat says so, stops the answer, and goes on with commands
printf '%s\nWhat color is it?\n/stats\n' "$q1" | "$bin" chat -m "$model" --image "$img" -t 1 -c 120 >"$tmp/out" 2>"$tmp/err"
check "a full context: exit status 0" $?
grep -q 'the context is full' "$tmp/err" && grep -q '^turns 1 | context [0-9]* of 120 tokens' "$tmp/out"
check "a full context is reported and the conversation kept" $?
cat "$tmp/err"

printf 'x\n' | "$bin" chat -m "$model" --policy "$model/policy-88.json" --skip topk:1 >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q -- '--policy FILE and --skip SPEC' "$tmp/err"
check "--policy with --skip is refused" $?
exit $fail
