#!/usr/bin/env bash
# The library as a program embedding it sees it: `cmake --install` into a temporary prefix puts the
# header, libmodes.a, libmodes.so (with a SONAME, exporting only what modes.h declares), the CLI and
# modes.pc in place; examples/ask.c, built with `pkg-config --cflags --libs modes` (shared) and
# with --static, answers a question about a test picture of the embedded model.
set -u
build=${MODES_BUILD:-build}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
model=$root/models/shapes-vqa
if [ ! -e "$build/libmodes.so" ]; then
    echo "skipped: this build has no shared library (MODES_SHARED=OFF, as in sanitizer and fuzz builds)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1
check "cmake --install --prefix: exit status 0" $?
pc=$(find "$prefix" -name modes.pc)
check "modes.pc installed ($pc)" "$([ -n "$pc" ]; echo $?)"
export PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
libdir=$(cd "$(pkg-config --variable=libdir modes)" && pwd)
includedir=$(cd "$(pkg-config --variable=includedir modes)" && pwd)
for f in "$includedir/modes.h" "$libdir/libmodes.a" "$libdir/libmodes.so" "$prefix/bin/modes"; do
    check "installed: ${f#"$prefix"/}" "$([ -e "$f" ]; echo $?)"
done
"$prefix/bin/modes" --help >/dev/null 2>&1
check "the installed CLI runs" $?

# The shared library: a SONAME, and no symbol that modes.h does not declare.
soname=$(readelf -d "$libdir/libmodes.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "libmodes.so has a SONAME ($soname)" "$([ -n "$soname" ] && [ -e "$libdir/$soname" ]; echo $?)"
nm -D --defined-only "$libdir/libmodes.so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort >"$tmp/exported"
grep -oE '\bmodes_[a-z0-9_]+\(' "$includedir/modes.h" | tr -d '(' | sort -u >"$tmp/declared"
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
check "libmodes.so exports only modes.h's functions ($(wc -l <"$tmp/exported") exported)${extra:+; also: $(echo $extra)}" \
    "$([ -z "$extra" ]; echo $?)"
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
check "libmodes.so exports every function of modes.h${missing:+; missing: $(echo $missing)}" "$([ -z "$missing" ]; echo $?)"

# A program built against the installed copy only: shared, then static.
want=$(sed -n 's/.*"id": "test-00000".*"question": "\([^"]*\)", "answer": "\([^"]*\)".*/\1|\2/p' \
    "$model/data/test.jsonl")
question=${want%|*}
answer=${want#*|}
cc -std=c17 -Wall -Wextra -Werror "$root/examples/ask.c" -o "$tmp/ask" \
    $(pkg-config --cflags --libs modes) -Wl,-rpath,"$libdir" 2>"$tmp/cc.log"
check "cc ask.c \$(pkg-config --cflags --libs modes)$(sed 's/^/: /' "$tmp/cc.log" | head -3)" $?
readelf -d "$tmp/ask" 2>/dev/null | grep -q "NEEDED.*libmodes.so"
check "ask is linked to libmodes.so" $?
got=$("$tmp/ask" "$model" "$model/data/images/test-00000.png" "$question" 2>&1)
check "ask (shared): \"$question\" -> \"$got\" (want \"$answer\")" "$([ "$got" = "$answer" ]; echo $?)"

static_libs=$(pkg-config --static --libs modes | sed 's/-lmodes\b/-l:libmodes.a/')
cc -std=c17 -Wall -Wextra -Werror "$root/examples/ask.c" -o "$tmp/ask-static" \
    $(pkg-config --cflags modes) $static_libs 2>"$tmp/cc.log"
check "cc ask.c \$(pkg-config --static --libs modes), libmodes.a$(sed 's/^/: /' "$tmp/cc.log" | head -3)" $?
! readelf -d "$tmp/ask-static" 2>/dev/null | grep -q "NEEDED.*libmodes"
check "ask-static does not need libmodes.so" $?
got=$("$tmp/ask-static" "$model" "$model/data/images/test-00000.png" "$question" 2>&1)
check "ask (static): \"$question\" -> \"$got\" (want \"$answer\")" "$([ "$got" = "$answer" ]; echo $?)"
exit $fail
