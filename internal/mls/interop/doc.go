// Package interop connects quicproquo's MLS (internal/mls) to other RFC 9420
// implementations.
//
// Server implements MLSClient, the gRPC interface that the MLS working
// group's interop test runner drives (mlsclientpb holds the service and its
// generated Go). Register it on any grpc.Server:
//
//	srv := grpc.NewServer()
//	mlsclientpb.RegisterMLSClientServer(srv, interop.NewServer(logger))
//
// or run the cmd/mls-interop command. Each group state, pending KeyPackage
// and stored PSK lives in memory under a numeric handle, and so do external
// signers (CreateExternalSigner) and reinitializations in progress
// (reinit_id). Every call of the interface is implemented, reinitialization
// and branching included; only an unsupported cipher suite answers
// codes.Unimplemented.
//
// ParseConfig reads the runner's scenario files ({"scripts": {name:
// [steps]}}), and ScriptRun.Run plays one script against a set of MLSClient
// clients, checking that every member and joiner reaches the same epoch
// authenticator after each commit and that every protected message comes
// back as sent. The package tests use them to run the upstream scenarios
// between two of our servers over loopback gRPC, and to run a live cross
// test against ts-mls (interop/tsmls/peer.mjs) when node is available.
package interop
