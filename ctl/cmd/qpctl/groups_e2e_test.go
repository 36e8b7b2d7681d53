package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EGroupNamesAndPrefixes: a second group with the same local name is
// refused; a group is named by its name, its id or a unique id prefix.
func TestE2EGroupNamesAndPrefixes(t *testing.T) {
	qpd, qpctl := e2eBuild(t)
	dir := e2eDir(t)
	socket := filepath.Join(dir, "qpd.sock")
	e2eStartQPD(t, qpd, dir, socket)
	if r := e2eRun(t, qpctl, socket, "register"); r.code != 0 {
		t.Fatalf("register: %+v", r)
	}
	r := e2eRun(t, qpctl, socket, "--json", "create-group", "--name", "team")
	var g struct {
		GroupID string `json:"group_id"`
		Name    string `json:"name"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &g) != nil || g.Name != "team" || len(g.GroupID) != 32 {
		t.Fatalf("create-group: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "create-group", "--name", "team")
	if r.code != 1 || !strings.Contains(r.stderr, "exists already") || !strings.Contains(r.stderr, g.GroupID) {
		t.Fatalf("second create-group team: %+v", r)
	}
	if strings.Count(r.stderr, "create group") > 0 || strings.Contains(r.stderr, "backend") {
		t.Errorf("error repeats itself: %q", r.stderr)
	}
	r = e2eRun(t, qpctl, socket, "--json", "create-group", "--name", "team")
	if !strings.Contains(r.stderr, `"kind":"already_exists"`) {
		t.Errorf("--json error: %+v", r)
	}
	for _, ref := range []string{"team", g.GroupID, g.GroupID[:6], "--group-id=team"} {
		args := []string{"members", "--group", ref}
		if strings.HasPrefix(ref, "--") {
			args = []string{"members", ref}
		}
		if r := e2eRun(t, qpctl, socket, args...); r.code != 0 || !strings.Contains(r.stdout, "(you)") {
			t.Errorf("qpctl %q: %+v", args, r)
		}
	}
	// --devices lists the person's devices; --json has them.
	r = e2eRun(t, qpctl, socket, "members", "--group", "team", "--devices")
	if r.code != 0 || !strings.Contains(r.stdout, "(this device)") || !strings.Contains(r.stdout, "  device ") {
		t.Errorf("members --devices: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "--json", "members", "--group", "team")
	var m struct {
		Identity string `json:"identity"`
		Devices  []struct {
			Key  string `json:"key"`
			Self bool   `json:"self"`
		} `json:"devices"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil || len(m.Devices) != 1 || m.Devices[0].Key != m.Identity || !m.Devices[0].Self {
		t.Errorf("members --json: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "members", "--group", "ffff0000")
	if r.code != 1 || !strings.Contains(r.stderr, "group not found") || strings.Contains(r.stderr, "not found (not found)") {
		t.Errorf("unknown group: %+v", r)
	}
	r = e2eRun(t, qpctl, socket, "fetch-key", strings.Repeat("ab", 33))
	if r.code != 1 || strings.Count(r.stderr, "invalid argument") != 1 {
		t.Errorf("fetch-key of a bad key repeats itself: %+v", r)
	}
}
