#!/bin/sh
# The include graph of src/ by folder, and the check that every include points down the layers
# (docs/design.md section 2): a folder may include only folders listed before it here.
#   scripts/include-graph.sh [SRC_DIR]   prints "from -> to (count)" and exits 1 on an upward include
set -eu
src=${1:-$(dirname "$0")/../src}
order="core tensor io text vision skip models calib eval"

rank() {
    i=0
    for f in $order; do
        if [ "$f" = "$1" ]; then echo $i; return; fi
        i=$((i + 1))
    done
    echo -1
}

edges=$(for file in $(find "$src" -name '*.[ch]' | sort); do
    from=$(basename "$(dirname "$file")")
    sed -n 's/^#include "\([a-z_0-9]*\)\/.*/\1/p' "$file" | while read -r to; do
        if [ "$to" != "$from" ]; then echo "$from $to"; fi
    done
done | sort | uniq -c)

bad=0
echo "$edges" | while read -r count from to; do
    [ -n "$from" ] || continue
    rf=$(rank "$from") rt=$(rank "$to")
    if [ "$rf" -lt 0 ] || [ "$rt" -lt 0 ]; then
        echo "$from -> $to ($count): a folder missing from the layer order in $0"; exit 1
    elif [ "$rt" -ge "$rf" ]; then
        echo "$from -> $to ($count): points up (order: $order)"; exit 1
    else
        echo "$from -> $to ($count)"
    fi
done || bad=1
if [ $bad -ne 0 ]; then echo "layers: upward includes found"; exit 1; fi
echo "layers: no upward include in $order"
