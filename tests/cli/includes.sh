#!/usr/bin/env bash
# The CLI (tools/) and the examples are programs built on the public API: their quoted includes are
# modes.h (include/modes.h, what `cmake --install` installs) and headers of their own folder, never
# the library's internal headers under src/. A tool needing more asks for a public function.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fail=0
n=0
for dir in tools examples; do
    for f in "$root/$dir"/*.c "$root/$dir"/*.h; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        while IFS= read -r line; do
            header=$(printf '%s\n' "$line" | sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p')
            [ -n "$header" ] || continue
            if [ "$header" = modes.h ] || { [ "${header#*/}" = "$header" ] && [ -e "$root/$dir/$header" ]; }; then
                continue
            fi
            echo "FAIL $dir/$(basename "$f"): #include \"$header\" (only modes.h and headers in $dir/)"
            fail=1
        done <"$f"
    done
done
[ "$n" -gt 0 ] || { echo "FAIL no sources found under $root/tools"; fail=1; }
[ $fail -eq 0 ] && echo "ok   the $n files of tools/ and examples/ include only modes.h and their own headers"
exit $fail
