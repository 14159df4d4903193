#!/usr/bin/env bash
# modes tokenize against the tiny model's reference ids, and its errors (one line, exit status 1).
set -u
bin=${MODES_BIN:-build/modes}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
shared=$SHARED
cases=$shared/ref/qwen3vlmoe-tiny-a/tokenizer_cases.jsonl
model=$shared/ref/qwen3vlmoe-tiny-a/model
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# The ids for every case, by folder and by tokenizer.json path. The case lines carry more keys than
# "text"; the command ignores them. The expected lines are rebuilt in the command's own format.
sed -E 's/.*"ids":\[([^]]*)\].*/{"ids": [\1]}/; s/,/, /g' "$cases" >"$tmp/want"
"$bin" tokenize -m "$model" <"$cases" >"$tmp/got" 2>"$tmp/err"
check "tokenize -m DIR: exit status 0" $?
cmp -s "$tmp/want" "$tmp/got"
s=$? # before the $(...) below, which would reset $?
check "tokenize -m DIR: ids equal the reference ($(wc -l <"$tmp/want") lines)" $s
"$bin" tokenize -m "$model/tokenizer.json" <"$cases" >"$tmp/got2"
cmp -s "$tmp/want" "$tmp/got2"
check "tokenize -m tokenizer.json: same ids" $?

# Blank lines are skipped; special tokens in the text are matched; an empty text gives no ids.
printf '\n{"text": "<|im_start|>"}\n\n{"text": ""}\n' | "$bin" tokenize -m "$model" >"$tmp/out"
printf '{"ids": [3]}\n{"ids": []}\n' | cmp -s - "$tmp/out"
check "blank lines, special tokens, empty text" $?

# A bad line stops with one line on stderr naming it, exit status 1.
printf '{"text": "a"}\n{"text": 5}\n' | "$bin" tokenize -m "$model" >"$tmp/out" 2>"$tmp/err"
status=$?
[ $status -eq 1 ] && grep -q 'stdin line 2' "$tmp/err" && [ "$(wc -l <"$tmp/err")" -eq 1 ]
s=$?
check "non-string text: exit 1, names stdin line 2 ($(cat "$tmp/err"))" $s
printf '{"text": "a"\n' | "$bin" tokenize -m "$model" >/dev/null 2>"$tmp/err"
status=$?
[ $status -eq 1 ] && grep -q 'stdin line 1' "$tmp/err"
check "truncated JSON: exit 1, names stdin line 1" $?

# Usage and loading errors.
"$bin" tokenize </dev/null >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q -- '-m' "$tmp/err"
check "missing -m: exit 1" $?
"$bin" tokenize -m "$tmp/nowhere" </dev/null >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q 'nowhere' "$tmp/err"
check "missing tokenizer: exit 1, names the path" $?
"$bin" tokenize --help >/dev/null
check "--help: exit 0" $?

exit $fail
