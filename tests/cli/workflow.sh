#!/bin/bash
# The README's MoDES workflow (calibrate -> search -> run -> eval), run as written on the embedded
# model: the command lines are taken from the README itself, with only a subset added (--limit, and a
# smaller --grid for search) so that the test takes well under a minute. Then the search's caps: the
# documented target is reached with the default caps, explicit caps still apply, and a target those
# caps cannot reach names the options that reach it.
set -u
BIN=$(realpath "${MODES_BIN:-build/modes}")
SRC=$(realpath "${MODES_TESTS:-tests}/..")
. "$(dirname "${BASH_SOURCE[0]}")/lib/ok.sh"

# The fenced block under the workflow heading, one command per line.
sed -n '/^### Making a model faster with MoDES/,/^##/p' "$SRC/README.md" |
    sed -n '/^```sh/,/^```/p' | grep '^build/modes ' >"$TMP/lines"
ok test "$(wc -l <"$TMP/lines")" -eq 4
for cmd in calibrate search run eval; do ok grep -q "^build/modes $cmd " "$TMP/lines"; done

cd "$TMP" || exit 1
ln -s "$SRC/models" models
mkdir bin && ln -s "$BIN" bin/modes
while IFS= read -r line; do
    sub=$(cut -d' ' -f2 <<<"$line")
    # The README's line, word for word, with the binary from this build and the subset options (which
    # replace the line's own values where it gives them).
    line=${line/#build\/modes/bin/modes}
    subset() { # subset OPTION VALUE
        if [[ " $line " == *" $1 "* ]]; then line=$(sed "s/ $1 [^ ]*/ $1 $2/" <<<"$line"); else line="$line $1 $2"; fi
    }
    case $sub in
    calibrate | eval) subset --limit 24 ;;
    search) subset --limit 24; subset --grid 16 ;;
    esac
    eval "$line" >"$sub.out" 2>"$sub.err"
    rc=$?
    ok test "$rc" -eq 0
    [ "$rc" -eq 0 ] || { echo "README line failed: $line" >&2; cat "$sub.err" >&2; }
done <"$TMP/lines"
ok test -s alphas.json
ok test -s policy-88.json
ok test -s accuracy.svg
target=$(grep '^build/modes search ' "$TMP/lines" | sed -n 's/.*--target \([0-9.]*\).*/\1/p')
ok test "$(field policy-88.json "d['achieved']['skip'] >= $target")" = "True"
ok test "$(field policy-88.json "d['search']['caps']['text'] > 0.71")" = "True"
ok grep -q "skip" run.out run.err

# Explicit caps still apply: the authors' grid cannot reach the target on this model, and the one line
# on stderr names the options (and values) that do.
S="-m models/shapes-vqa --data models/shapes-vqa/data/calib.jsonl --alphas alphas.json --limit 24 --grid 16"
bin/modes search $S --target "$target" --cap-text 0.71 --cap-vision 0.6 -o capped.json 2>err
ok test $? -eq 1
ok test "$(wc -l <err)" -eq 1
ok grep -q "unreachable with threshold caps 0.71 (text) and 0.6 (vision)" err
ok grep -q -- "--cap-text [0-9.]* --cap-vision [0-9.]*" err
ok test ! -e capped.json
caps=$(grep -o -- "--cap-text [0-9.]* --cap-vision [0-9.]*" err)
ok bin/modes search $S --target "$target" $caps -o capped.json
ok test "$(field capped.json "d['achieved']['skip'] >= $target")" = "True"
# Beyond every skippable slot (special tokens are never skipped): no caps help, and it says so.
bin/modes search $S --target 0.999 -o never.json 2>err
ok test $? -eq 1
ok grep -q "unreachable at any thresholds: at most 0\.[0-9]* of the routed slots" err
ok test ! -e never.json

ok_done
