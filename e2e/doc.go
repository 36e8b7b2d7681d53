// Package e2e tests quicproquo end to end with real processes: it builds
// qpnode, qpd and qpctl, starts one node on a loopback port and several
// daemons with their own state folders and sockets, and drives them only
// through the qpctl binary, as a user would.
package e2e
