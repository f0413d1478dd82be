#!/bin/sh
# Count each style file's lines of code -- neither blank nor comment -- and
# print them as the C table pact-styles embeds (examples/pact-styles/loc.h).
# Usage: loc.sh DIR FILE... (each FILE in DIR; the table names FILE)
dir=$1
shift
echo '/* made by examples/pact-styles/loc.sh: lines of code per style file */'
echo 'static const struct { const char *file; int lines; } style_loc[] = {'
for f in "$@"; do
    n=0 # not there: the program says "?"
    [ -r "$dir/$f" ] && n=$(awk '
    {
        line = $0; code = 0
        while (length(line) > 0) {
            if (incomment) {
                i = index(line, "*/")
                if (i == 0) { line = ""; break }
                line = substr(line, i + 2); incomment = 0
            } else {
                i = index(line, "/*"); j = index(line, "//")
                if (j > 0 && (i == 0 || j < i)) line = substr(line, 1, j - 1)
                i = index(line, "/*")
                if (i == 0) { if (line ~ /[^ \t]/) code = 1; line = "" }
                else {
                    if (substr(line, 1, i - 1) ~ /[^ \t]/) code = 1
                    line = substr(line, i + 2); incomment = 1
                }
            }
        }
        if (code) n++
    }
    END { print n + 0 }' "$dir/$f") || exit 1
    printf '    {"%s", %s},\n' "$f" "$n"
done
echo '};'
