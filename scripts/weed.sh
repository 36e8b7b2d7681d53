#!/bin/sh
# Builds weed, SeaweedFS's server, into the folder OUT (created if
# needed): the real S3-compatible object store that the attachment tests
# start (internal/s3test; point QPQ_WEED at OUT/weed). It is built from
# the Go module github.com/seaweedfs/seaweedfs in its own module folder,
# because its go.mod has replace directives that `go install module@version`
# refuses. Takes a few minutes the first time (the build cache keeps it).
set -eu
out="${1:?usage: scripts/weed.sh OUT}"
version=v0.0.0-20261109003541-7506e5f91cd6
mkdir -p "$out"
out="$(cd "$out" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Outside any module, so that this module's go.mod is not touched.
dir="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -n "$dir" ] || { echo "weed.sh: could not download github.com/seaweedfs/seaweedfs@$version" >&2; exit 1; }
cd "$dir"
GOFLAGS=-buildvcs=false go build -o "$out/weed" ./weed
"$out/weed" version
