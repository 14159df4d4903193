# The layers of src/ point down (docs/design.md section 2): scripts/include-graph.sh passes on the
# tree and fails on a copy with one upward include added.
. "$(dirname "$0")/lib/ok.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
ok sh "$root/scripts/include-graph.sh" "$root/src" >"$TMP/graph.txt"
ok grep -q "^models -> skip" "$TMP/graph.txt"
cp -r "$root/src" "$TMP/src"
echo '#include "models/model.h"' >>"$TMP/src/skip/stats.c"
ok sh -c '! sh "$1/scripts/include-graph.sh" "$2/src" >"$2/up.txt"' _ "$root" "$TMP"
ok grep -q "skip -> models (1): points up" "$TMP/up.txt"
ok_done
