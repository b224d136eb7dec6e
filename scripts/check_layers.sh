#!/usr/bin/env bash
# check_layers.sh — fail when a source file includes a layer above its own.
#
#   bash scripts/check_layers.sh [SRC_DIR]      (default: src/ of this repository)
#
# Layers, lowest first: base prim alloc runtime ace shim (docs/design.md). A file in
# src/LAYER/ may include "L/..." only for a layer L at or below LAYER, and the public
# headers "hakmem*.h". Every other quoted include is an error too: includes name their
# layer, so that the rule can be read off each line. Prints one line per violation and
# exits 1 when there is any; prints a summary and exits 0 otherwise.
set -u
src="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/src}"
layers=(base prim alloc runtime ace shim)
rank() { local i; for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }

bad=0 files=0
while IFS= read -r -d '' f; do
  rel="${f#"$src"/}"
  own="${rel%%/*}"
  own_rank="$(rank "$own")"
  if [ "$own_rank" -lt 0 ]; then
    echo "check_layers: $rel: not inside a layer folder (${layers[*]})"; bad=$((bad + 1)); continue
  fi
  files=$((files + 1))
  while IFS=: read -r line inc; do
    target="${inc%%/*}"
    case "$inc" in
      hakmem*.h) continue ;;                                   # public headers
    esac
    if [ "$target" = "$inc" ]; then
      echo "check_layers: $rel:$line: #include \"$inc\" does not name its layer"; bad=$((bad + 1)); continue
    fi
    t_rank="$(rank "$target")"
    if [ "$t_rank" -lt 0 ]; then
      echo "check_layers: $rel:$line: #include \"$inc\": no layer '$target'"; bad=$((bad + 1))
    elif [ "$t_rank" -gt "$own_rank" ]; then
      echo "check_layers: $rel:$line: #include \"$inc\" points up ($own includes $target)"; bad=$((bad + 1))
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$f" | sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
done < <(find "$src" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)

if [ "$bad" -gt 0 ]; then
  echo "check_layers: $bad violation(s)"
  exit 1
fi
echo "check_layers: $files files, every include points down (${layers[*]})"
