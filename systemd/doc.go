// Package systemd holds the systemd units of quicproquo and the tests that
// check them with `systemd-analyze verify` and `systemd-analyze security`
// (each unit's exposure level at most 2.0):
//
//   - qpd.service: a user unit (Type=notify) for the per-user daemon, at
//     ~/.config/systemd/user/qpd.service, running ~/.local/bin/qpd with its
//     socket under $XDG_RUNTIME_DIR/quicproquo (RuntimeDirectory=), sandboxed
//     as far as a user manager allows (it needs unprivileged user namespaces).
//   - qpnode.service: a system unit for the node, with a dynamic user, its
//     state in /var/lib/qpnode, a read-only view of the rest of the system,
//     the @system-service system call filter and a private /proc view.
//
// systemd-analyze verify refuses a unit whose ExecStart binary does not
// exist, so the test lays the units out in a temporary tree: for qpnode a
// --root folder holding usr/local/bin/qpnode (a stub script), the unit in
// etc/systemd/system and a copy of the host's /usr/lib/systemd/system (for
// the targets the unit depends on); for qpd a temporary HOME with
// .local/bin/qpd and a temporary XDG_RUNTIME_DIR. Run it with
//
//	go test ./systemd
//
// (Debian: apt-get install systemd, for systemd-analyze).
package systemd
