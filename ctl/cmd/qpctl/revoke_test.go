package main

import (
	"bytes"
	"strings"
	"testing"

	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// TestPrintRevokedIncomplete: a revocation that left the device in a
// group prints the group and exits 1; a complete one exits 0.
func TestPrintRevokedIncomplete(t *testing.T) {
	for _, c := range []struct {
		r     *daemonv1.RevokeDeviceResponse
		json  bool
		out   string
		errIs string
		code  int
	}{
		{&daemonv1.RevokeDeviceResponse{Device: "ab", Version: 2, Groups: 2}, false, "revoked ab (device list version 2), removed from 2 group(s)\n", "", 0},
		{&daemonv1.RevokeDeviceResponse{Device: "ab", Version: 2, Groups: 1, GroupsFailed: []string{"g2: storage failure"}}, false,
			"revoked ab (device list version 2), removed from 1 group(s)\n  not removed from g2: storage failure\n", "revocation incomplete: the device is still in 1 group(s)", exitError},
		{&daemonv1.RevokeDeviceResponse{Device: "ab", Version: 2, Groups: 1, GroupsFailed: []string{"g2: x"}}, true,
			`{"device":"ab","groups":1,"groups_failed":["g2: x"],"version":2}` + "\n", `"exit_status":1`, exitError},
	} {
		var out, errOut bytes.Buffer
		a := &app{stdout: &out, stderr: &errOut, json: c.json, ran: true}
		code := a.exit(nil, a.printRevoked(c.r))
		if out.String() != c.out || code != c.code || !strings.Contains(errOut.String(), c.errIs) {
			t.Errorf("%+v json=%v: stdout %q stderr %q code %d, want %q %q %d", c.r, c.json, out.String(), errOut.String(), code, c.out, c.errIs, c.code)
		}
	}
}
