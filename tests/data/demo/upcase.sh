#!/bin/sh
# The demo's program under test: upper-cases a text sample and counts its
# words. Usage: upcase.sh SAMPLE OUTDIR. A sample starting with FAIL makes it
# exit 2, as a crashing build would; one of more than three words gets a note
# on standard error, as real programs chatter.
set -e
tr 'a-z' 'A-Z' < "$1" > "$2/upper.txt"
wc -w < "$1" | tr -d ' ' > "$2/words.txt"
words=$(cat "$2/words.txt")
if [ "$words" -gt 3 ]; then echo "upcase: $1: $words words, upper-cased" >&2; fi
case "$(head -c 4 "$1")" in FAIL) echo "upcase: refusing $1" >&2; exit 2 ;; esac
