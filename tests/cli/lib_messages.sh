#!/bin/bash
# The library speaks of files, values and concepts, never of the CLI's options: no string literal in
# src/ names a flag (--name, or -x as a word). The CLI adds the flag hints where it knows them.
set -u
SRC=$(realpath "${MODES_TESTS:-tests}/../src")
/usr/bin/python3 - "$SRC" <<'PY'
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
# C string literals outside comments; a character literal or comment may hold quotes.
token = re.compile(r'//[^\n]*|/\*.*?\*/|\'(?:\\.|[^\'\\])*\'|"((?:\\.|[^"\\])*)"', re.S)
flag = re.compile(r'(?<![\w-])--?[A-Za-z][\w-]*')
bad = []
for path in sorted(root.rglob('*.[ch]')):
    text = path.read_text(errors='replace')
    for m in token.finditer(text):
        if m.group(1) is None:
            continue
        for f in flag.findall(m.group(1)):
            if re.fullmatch(r'-[A-Za-z]', f) is None and not f.startswith('--'):
                continue  # words such as -inf are not flags
            line = text.count('\n', 0, m.start()) + 1
            bad.append(f'{path.relative_to(root.parent)}:{line}: "{m.group(1)}" names {f}')
print('\n'.join(bad) if bad else 'no CLI flags in library strings')
sys.exit(1 if bad else 0)
PY
