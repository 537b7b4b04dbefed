#!/usr/bin/env bash
# Builds the FerretDB binary that Anonymo embeds (npm start without MONGODB_URI) and that
# the tests start: FerretDB v1.24.2 with one upstream bug fixed (see
# tools/ferretdb/sqlite-id-index.patch and docs/STORAGE.md).
#
# Output: .tools/bin/ferretdb. Idempotent: skipped when the binary was built from the
# same sources. Needs Go (and the Go module proxy the first time).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tool="$root/tools/ferretdb"
out="$root/.tools"
bin="$out/bin/ferretdb"

if ! command -v go >/dev/null 2>&1; then
  echo "build-ferretdb: Go is not installed; set MONGODB_URI to use another MongoDB server" >&2
  exit 3
fi

stamp=$(cat "$tool/go.mod" "$tool/go.sum" "$tool/main.go" "$tool/sqlite-id-index.patch" | sha256sum | cut -c1-16)
if [ -x "$bin" ] && [ "$(cat "$out/ferretdb.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi

echo "build-ferretdb: building FerretDB v1.24.2 into $bin (first time: about a minute)" >&2
cd "$tool"
go mod download github.com/FerretDB/FerretDB
src=$(go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)
patched="$out/src/FerretDB"
rm -rf "$patched"
mkdir -p "$out/src" "$out/bin"
cp -r "$src" "$patched"
chmod -R u+w "$patched"
patch -s -p1 -d "$patched" < "$tool/sqlite-id-index.patch"

# Build against the patched copy through a throw-away go.mod, so the committed one stays clean.
cp go.mod "$out/go.build.mod"
cp go.sum "$out/go.build.sum"
go mod edit -modfile="$out/go.build.mod" -replace "github.com/FerretDB/FerretDB=$patched"
go build -modfile="$out/go.build.mod" -trimpath -o "$bin.tmp" .
mv "$bin.tmp" "$bin"
echo "$stamp" > "$out/ferretdb.stamp"
echo "build-ferretdb: done" >&2
