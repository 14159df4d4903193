#!/usr/bin/env bash
# The README's command list and each command's --help agree: every option a README command line
# names is in that command's --help, and every option --help names is on the README's line, a
# long form counting as its short one ("-m/--model" or "-m, --model" in --help makes --model and -m
# the same).
# Every command of `modes --help` has a README line and a --help that exits 0.
set -u
bin=${MODES_BIN:-build/modes}
tests=${MODES_TESTS:-tests}
readme=$tests/../README.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# The command list: the code block under "## Commands", one "modes CMD ..." line and its indented
# continuation lines per command.
awk '/^## Commands/ { on = 1; next } on && /^```/ { n++; if (n == 2) exit; next } on && n == 1' "$readme" >"$tmp/block"
# options: -x or --xx-yy after a space, bracket, parenthesis, bar or slash (not "-1", not "text-only")
options() { grep -oE '(^|[][ (|/])--?[a-z][a-z0-9-]*' | sed -E 's/^[][ (|/]//' | grep -vxE -- '-h|--help' | sort -u; }

commands=$("$bin" --help | awk '/^  [a-z]/ { print $1 }')
[ -n "$commands" ]
check "modes --help lists the commands" $?
for cmd in $commands; do
    awk -v c="$cmd" '$1 == "modes" { on = ($2 == c) } on' "$tmp/block" >"$tmp/readme_$cmd"
    if [ ! -s "$tmp/readme_$cmd" ]; then
        check "$cmd: a line in the README's command list" 1
        continue
    fi
    "$bin" "$cmd" --help >"$tmp/help_$cmd" 2>&1
    check "$cmd --help exits 0" $?
    # the long forms --help pairs with short ones, as sed expressions mapping long to short
    grep -oE '(^|[][ (|])-[a-zA-Z](/|, )--[a-z][a-z0-9-]*' "$tmp/help_$cmd" | sed -E 's/^[][ (|]//; s/, /\//' |
        sort -u | awk -F/ '{ printf "s/^%s$/%s/\n", $2, $1 }' >"$tmp/alias_$cmd"
    options <"$tmp/help_$cmd" | sed -f "$tmp/alias_$cmd" | sort -u >"$tmp/h"
    options <"$tmp/readme_$cmd" | sed -f "$tmp/alias_$cmd" | sort -u >"$tmp/r"
    missing=$(comm -23 "$tmp/r" "$tmp/h" | tr '\n' ' ')
    extra=$(comm -13 "$tmp/r" "$tmp/h" | tr '\n' ' ')
    [ -z "$missing" ]
    check "$cmd: the README's options are in --help${missing:+ (missing: $missing)}" $?
    [ -z "$extra" ]
    check "$cmd: --help's options are on the README's line${extra:+ (not there: $extra)}" $?
    # the options the command's parser takes ("-m|--model" strings in tools/cmd_CMD.c)
    src=$tests/../tools/cmd_$cmd.c
    if [ -f "$src" ]; then
        # commands that call opt_generation also take the options it parses in tools/cli.c
        gen=/dev/null
        grep -q 'opt_generation(' "$src" &&
            awk '/^int opt_generation\(/ { on = 1 } on { print } on && /^}/ { exit }' "$tests/../tools/cli.c" >"$tmp/gen" &&
            gen=$tmp/gen
        cat "$src" "$gen" | grep -oE '"--?[a-z][a-z0-9-]*(\|--[a-z][a-z0-9-]*)?"' | tr -d '"' | cut -d'|' -f1 |
            sed -f "$tmp/alias_$cmd" | grep -vxE -- '-h|--help' | sort -u >"$tmp/s"
        unsaid=$(comm -23 "$tmp/s" "$tmp/h" | tr '\n' ' ')
        [ -z "$unsaid" ]
        check "$cmd: every option it parses is in --help${unsaid:+ (not there: $unsaid)}" $?
    fi
done
# and the README lists no command that does not exist
for cmd in $(awk '$1 == "modes" { print $2 }' "$tmp/block"); do
    grep -qx -- "$cmd" <<<"$commands"
    check "README command '$cmd' is a command of modes --help" $?
done
exit $fail
