// Package integration holds tests that join the MLS group state machine
// (internal/mls) and a real node (node/server over SQLite, QUIC on loopback)
// without the daemon in between, to show the node's group delivery at sizes
// where starting one daemon per member would only measure process start-up.
package integration
