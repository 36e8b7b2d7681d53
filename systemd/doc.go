// Package systemd holds the systemd units of quicproquo and the test that
// checks them with `systemd-analyze verify`:
//
//   - qpd.service: a user unit (Type=notify) for the per-user daemon, at
//     ~/.config/systemd/user/qpd.service, running ~/.local/bin/qpd with its
//     socket under $XDG_RUNTIME_DIR/quicproquo.
//   - qpnode.service: a system unit for the node, with a dynamic user, its
//     state in /var/lib/qpnode and a read-only view of the rest of the system.
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
