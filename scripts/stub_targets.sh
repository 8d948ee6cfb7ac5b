#!/bin/sh
# Writes an empty stand-in for every Rust target the workspace's manifests declare that
# is not there yet (the library, binaries, the integration test, every bench, each
# member's), so cargo can load the workspace from its manifests alone: the Dockerfile's
# dependency layer builds with only Cargo.toml, Cargo.lock and the members' manifests.
# POSIX sh: it runs in the build image.
set -eu
cd "$(dirname "$0")/.."

stub() {
  [ -e "$1" ] && return 0
  mkdir -p "$(dirname "$1")"
  case "$1" in
    */lib.rs) : > "$1" ;;
    *) echo 'fn main() {}' > "$1" ;;
  esac
}

for manifest in Cargo.toml */Cargo.toml; do
  [ -f "$manifest" ] || continue
  dir=$(dirname "$manifest")
  # `path = "…rs"` of every target.
  for path in $(sed -n 's/^path = "\(.*\.rs\)"$/\1/p' "$manifest"); do
    stub "$dir/$path"
  done
  # A bench or test declared by name only lives at benches/<name>.rs / tests/<name>.rs.
  awk -v dir="$dir" '
    function flush() { if (kind != "" && name != "") print dir "/" kind "/" name ".rs"; kind = ""; name = "" }
    /^\[\[bench\]\]/ { flush(); kind = "benches"; next }
    /^\[\[test\]\]/  { flush(); kind = "tests"; next }
    /^\[/            { flush(); next }
    kind != "" && /^path = / { kind = ""; name = ""; next }
    kind != "" && /^name = "/ { name = $0; sub(/^name = "/, "", name); sub(/".*$/, "", name) }
    END { flush() }' "$manifest" | while read -r path; do stub "$path"; done
done
