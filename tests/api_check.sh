#!/bin/sh
# docs/API.md covers the public API of nn.h, and its examples work.
#   1. Every public name of nn.h must appear inside `backticks` in API.md's text (code
#      blocks do not count): each NNDEF function and typedef name and each #define and
#      enumeration constant of the public part (before `#ifdef NN_IMPLEMENTATION`), and
#      each configuration macro of the header's doc block. The include guard NN_H is not
#      API. Missing names are listed.
#   2. Every ```c block of API.md is a complete program: it must compile warning-free
#      (-std=c99 -Wall -Wextra -Wpedantic -Werror) and exit 0 when run in a scratch directory.
#      So must every example of the header's own manual (its doc block): the lines between
#      "   ```c" and "   ```", less the comment's three-space margin.
#   3. Every "## " group of API.md has at least one such example, and the manual has some.
# Usage: tests/api_check.sh [header [doc]]   (defaults nn.h and docs/API.md)
# Prints "api: N passed, N failed" (one test per name, example and group).
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
header=${1:-nn.h}
doc=${2:-docs/API.md}
cc=${CC:-cc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL api: $*"; }

if [ ! -r "$header" ] || [ ! -r "$doc" ]; then
    fail "cannot read $header or $doc"
    echo "api: $passed passed, $failed failed"; exit 1
fi

# ---- 1. Names -------------------------------------------------------------------------
awk '/^#ifdef NN_IMPLEMENTATION/ { exit } { print }' "$header" > "$tmp/public.h"
# The public part without comments, for the declarations.
sed -e 's|/\*.*\*/||g' "$tmp/public.h" | awk '
    /\/\*/ { in_comment = 1; sub(/\/\*.*/, "") ; print; next }
    in_comment && /\*\// { in_comment = 0; sub(/.*\*\//, "") }
    !in_comment { print }' > "$tmp/code.h"

# Functions: the identifier before the first "(" of each line that starts with NNDEF.
grep '^NNDEF' "$tmp/code.h" | sed 's/(.*//' | awk '{ print $NF }' | sed 's/^\*//' > "$tmp/functions"
bad=$(grep -cvE '^nn_[a-z0-9_]+$' "$tmp/functions")
[ "$bad" -eq 0 ] || fail "$bad NNDEF declarations of $header whose name could not be read: $(grep -vE '^nn_[a-z0-9_]+$' "$tmp/functions" | tr '\n' ' ')"
# Types: the name before the ";" of a one-line typedef, or after the "}" that closes one;
# a function pointer's, the name in "(*name)".
{ grep -E '^typedef .*;[[:space:]]*$' "$tmp/code.h" | grep -v '(\*'; grep -E '^}[[:space:]]*[A-Za-z_][A-Za-z0-9_]*;' "$tmp/code.h"; } \
    | sed -E 's/.*[[:space:]}*]([A-Za-z_][A-Za-z0-9_]*);[[:space:]]*$/\1/' > "$tmp/types"
grep -E '^typedef [^(]*\(\*[A-Za-z_][A-Za-z0-9_]*\)' "$tmp/code.h" \
    | sed -E 's/^[^(]*\(\*([A-Za-z_][A-Za-z0-9_]*)\).*/\1/' >> "$tmp/types"
# Enumeration constants: the NN_ names between the braces of each typedef enum.
awk '/^typedef enum/ { e = 1; text = "" } e { text = text " " $0 }
     e && /}/ { sub(/^[^{]*\{/, "", text); sub(/}.*/, "", text); print text; e = 0 }' "$tmp/code.h" \
    | grep -oE '\bNN_[A-Z0-9_]+' > "$tmp/constants"
# Macros defined in the public part (not private NN__ ones, not the include guard).
grep -oE '^#[[:space:]]*define[[:space:]]+NN[A-Z0-9_]*' "$tmp/code.h" | awk '{ print $NF }' \
    | grep -v '^NN__' | grep -vx 'NN_H' > "$tmp/macros"
# Configuration macros: the table in the doc block's section "CONFIGURATION MACROS", up
# to the next numbered section (NNDEF and the NN_THREADS variable included).
awk '/CONFIGURATION MACROS/ { p = 1; next } p && /^   [0-9]+\. / { exit } p' "$tmp/public.h" \
    | grep -oE '^[[:space:]]+NN(_[A-Z0-9_]+|DEF)' | tr -d ' \t' > "$tmp/config"
for kind in functions types constants macros config; do
    [ -s "$tmp/$kind" ] || fail "found no $kind in $header (has its layout changed?)"
done

# Identifiers inside `code spans` of API.md, outside ``` blocks.
awk '/^```/ { block = !block; next } !block { print }' "$doc" | grep -oE '`[^`]+`' \
    | grep -oE '[A-Za-z_][A-Za-z0-9_]*' | sort -u > "$tmp/documented"

check_names() {   # check_names KIND FILE
    for name in $(sort -u "$2"); do
        if grep -qxF "$name" "$tmp/documented"; then pass
        else fail "$1 $name of $header is missing from $doc"; fi
    done
}
check_names function "$tmp/functions"
check_names type "$tmp/types"
check_names constant "$tmp/constants"
check_names macro "$tmp/macros"
check_names "configuration macro" "$tmp/config"

# ---- 2. Examples ------------------------------------------------------------------------
# Each ```c block to <prefix>_<line>.c, named by the line of its opening fence; the
# lines go to the list <prefix>. extract FILE PREFIX MARGIN: MARGIN spaces start every
# line of a block and its fences (0 in API.md, 3 in the header's doc block, which ends
# at its first "*/").
extract() {
    awk -v dir="$tmp" -v prefix="$2" -v margin="$3" '
        function strip(line) { return substr(line, 1, margin) ~ /^ *$/ ? substr(line, margin + 1) : line }
        margin > 0 && /\*\// { exit }
        { line = strip($0) }
        line ~ /^```c[[:space:]]*$/ && !block { block = 1; file = sprintf("%s/%s_%d.c", dir, prefix, NR); print NR; next }
        line ~ /^```/ && block { block = 0; close(file); next }
        block { print line > file }' "$1" > "$tmp/$2"
}
run_examples() {   # run_examples FILE PREFIX
    for line in $(cat "$tmp/$2"); do
        src="$tmp/$2_$line.c"
        prog="$tmp/$2_$line"
        if ! $cc -std=c99 -O0 -Wall -Wextra -Wpedantic -Werror -I"$root" "$src" -o "$prog" -lm -lpthread \
                > "$tmp/out" 2>&1; then
            fail "the example at $1:$line does not compile:"; head -n 15 "$tmp/out"; continue
        fi
        mkdir "$prog.run"
        if (cd "$prog.run" && timeout 120 "$prog") > "$tmp/out" 2>&1; then pass
        else fail "the example at $1:$line exits with status $? when run:"; tail -n 15 "$tmp/out"; fi
    done
}
extract "$doc" ex 0
run_examples "$doc" ex
extract "$header" manual 3
if [ -s "$tmp/manual" ]; then pass; else fail "the manual at the top of $header has no \`\`\`c example"; fi
run_examples "$header" manual

# ---- 3. An example in every group --------------------------------------------------------
awk '/^```/ { block = !block }
     !block && /^## / { if (title != "") print title "\t" count; title = substr($0, 4); count = 0 }
     /^```c[[:space:]]*$/ { count++ }
     END { if (title != "") print title "\t" count }' "$doc" > "$tmp/groups"
[ -s "$tmp/groups" ] || fail "$doc has no \"## \" groups"
while IFS='	' read -r title count; do
    if [ "$count" -gt 0 ]; then pass; else fail "the group \"$title\" of $doc has no \`\`\`c example"; fi
done < "$tmp/groups"

echo "api: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
