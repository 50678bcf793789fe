#!/bin/sh
# The demo's program under test: upper-cases a text sample and counts its
# words. Usage: upcase.sh SAMPLE OUTDIR. A sample starting with FAIL makes it
# exit 2, as a crashing build would.
set -e
tr 'a-z' 'A-Z' < "$1" > "$2/upper.txt"
wc -w < "$1" | tr -d ' ' > "$2/words.txt"
case "$(head -c 4 "$1")" in FAIL) echo "upcase: refusing $1" >&2; exit 2 ;; esac
