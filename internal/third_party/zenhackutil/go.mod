// Module zenhack.net/go/util is a small stand-in, written for quicproquo, for the
// parts of the upstream module that capnproto.org/go/capnp/v3 uses. The main
// module wires it in with a replace directive (see ../../../go.mod).
module zenhack.net/go/util

go 1.26
