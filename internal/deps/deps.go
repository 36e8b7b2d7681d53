//go:build tools

// Package deps pins the project's direct dependencies while their users are
// being written.
package deps

import (
	_ "capnproto.org/go/capnp/v3"
	_ "capnproto.org/go/capnp/v3/rpc"
	_ "github.com/cloudflare/circl/sign/ed448"
	_ "github.com/quic-go/quic-go"
	_ "golang.org/x/sys/unix"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite"
)
