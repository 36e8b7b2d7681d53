#!/bin/sh
# Regenerates the Go code for the Cap'n Proto schemas under this directory
# (one Go package per schema file: envelope, auth, delivery, group, blob, devices, node).
# Needs the capnp compiler (Debian: apt-get install capnproto). The Go plugin
# is built from this module, so its dependency replacements apply.
set -eu
cd "$(dirname "$0")"
command -v capnp >/dev/null 2>&1 || {
	echo "gen.sh: capnp not found; install it (apt-get install capnproto)" >&2
	exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/capnpc-go" capnproto.org/go/capnp/v3/capnpc-go
std="$(go list -m -f '{{.Dir}}' capnproto.org/go/capnp/v3)/std"
capnp compile -I "$std" -I . -o"$tmp/capnpc-go" \
	envelope/envelope.capnp auth/auth.capnp delivery/delivery.capnp group/group.capnp blob/blob.capnp devices/devices.capnp node/node.capnp
# Key the struct literals that wrap a call, so that go vet's composites check
# passes for the cross-package ones the generator writes.
for f in envelope/*.capnp.go auth/*.capnp.go delivery/*.capnp.go group/*.capnp.go blob/*.capnp.go devices/*.capnp.go node/*.capnp.go; do
	sed 's/\(_[A-Za-z0-9]*\){call}/\1{Call: call}/g' "$f" >"$tmp/fixed.go"
	cat "$tmp/fixed.go" >"$f"
done
gofmt -w envelope auth delivery group blob devices node
