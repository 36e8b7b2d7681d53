package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// (e) Five daemons on one node; in each of 20 rounds some members commit
// (add, remove, update) while others send, all at once. At the end every
// member is at the same epoch with the same epoch authenticator; every
// message reached each member who was in the group for its whole round,
// exactly once, and never a member who was out for the whole round; and
// all members received the messages they share in the same order.
func TestMultiParty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("QPQ_E2E_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set QPQ_E2E_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0")
	const people = 5
	names := make([]string, people)
	for i := range names {
		names[i] = fmt.Sprintf("u%d", i)
	}
	users := registeredUsers(t, root, n.addr, names...)
	group := users[0].createGroup(t, "multi")
	args := []string{"invite", "--group-id", group}
	for _, u := range users[1:] {
		args = append(args, "--peer-key", u.id)
	}
	users[0].must(t, args...)
	for _, u := range users[1:] {
		u.join(t, group, "multi")
	}
	present := map[int]bool{}
	for i := range users {
		present[i] = true
	}
	// sentIn[r] are the texts sent in round r, by sender index.
	type sent struct {
		text   string
		sender int
	}
	var rounds [][]sent
	// stable[r] / absent[r]: members in the group (out of it) for the
	// whole of round r.
	var stable, absent []map[int]bool

	for r := range 20 {
		var in, out []int
		for i := range users {
			if present[i] {
				in = append(in, i)
			} else {
				out = append(out, i)
			}
		}
		rng.Shuffle(len(in), func(a, b int) { in[a], in[b] = in[b], in[a] })
		rng.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
		type op struct {
			by   int
			args []string
		}
		var ops []op
		changed := map[int]bool{}
		x1, x2 := in[0], in[1]
		switch {
		case len(out) > 0 && (len(in) <= 2 || rng.IntN(2) == 0):
			y := out[0]
			ops = append(ops, op{x1, []string{"invite", "--group-id", group, "--peer-key", users[y].id}})
			changed[y] = true
		case len(in) > 2:
			y := in[2+rng.IntN(len(in)-2)]
			ops = append(ops, op{x1, []string{"remove", "--group-id", group, "--peer-key", users[y].id}})
			changed[y] = true
		}
		if len(out) > 1 && rng.IntN(2) == 0 {
			y := out[1]
			ops = append(ops, op{x2, []string{"invite", "--group-id", group, "--peer-key", users[y].id}})
			changed[y] = true
		} else {
			ops = append(ops, op{x2, []string{"update", "--group-id", group}})
		}
		st, ab := map[int]bool{}, map[int]bool{}
		var msgs []sent
		for i := range users {
			switch {
			case present[i] && !changed[i]:
				st[i] = true
				if rng.IntN(4) != 0 {
					msgs = append(msgs, sent{fmt.Sprintf("round %d from u%d", r, i), i})
				}
			case !present[i] && !changed[i]:
				ab[i] = true
			}
		}
		var wg sync.WaitGroup
		for _, o := range ops {
			wg.Go(func() { users[o.by].must(t, o.args...) })
		}
		for _, m := range msgs {
			wg.Go(func() { users[m.sender].must(t, "send", "--group-id", group, "--msg", m.text) })
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		for y := range changed {
			present[y] = !present[y]
		}
		rounds, stable, absent = append(rounds, msgs), append(stable, st), append(absent, ab)
		multiConverge(t, users, present, group)
		// Every stable member has the round's messages before the next
		// round changes the membership again.
		for i := range st {
			waitFor(t, fmt.Sprintf("round %d messages at u%d", r, i), func() bool {
				have := map[string]bool{}
				for _, m := range users[i].history(t, group) {
					have[m.Text] = true
				}
				for _, m := range msgs {
					if !have[m.text] {
						return false
					}
				}
				return true
			})
		}
	}

	// Final checks on the histories.
	histories := make([][]messageJSON, len(users))
	for i, u := range users {
		histories[i] = u.history(t, group)
		seen := map[string]bool{}
		for _, m := range histories[i] {
			if seen[m.Text] {
				t.Errorf("u%d has %q twice", i, m.Text)
			}
			seen[m.Text] = true
		}
		for r, msgs := range rounds {
			for _, m := range msgs {
				switch {
				case stable[r][i] && !seen[m.text]:
					t.Errorf("u%d was in the group for round %d but lacks %q", i, r, m.text)
				case absent[r][i] && seen[m.text]:
					t.Errorf("u%d was out of the group for round %d but has %q", i, r, m.text)
				}
			}
		}
	}
	// Same order everywhere for what two members both received.
	for i := range users {
		for j := i + 1; j < len(users); j++ {
			pos := map[string]int{}
			for k, m := range histories[j] {
				if !m.Outgoing {
					pos[m.Text] = k
				}
			}
			last := -1
			for _, m := range histories[i] {
				if m.Outgoing {
					continue
				}
				if k, ok := pos[m.Text]; ok {
					if k < last {
						t.Errorf("u%d and u%d received %q in different orders", i, j, m.Text)
					}
					last = k
				}
			}
		}
	}
}

// multiConverge waits until every present member reports the same epoch
// and epoch authenticator, with every present member listed.
func multiConverge(t *testing.T, users []*user, present map[int]bool, group string) {
	t.Helper()
	want := 0
	for _, in := range present {
		if in {
			want++
		}
	}
	var last string
	converged := func() bool {
		var epoch uint64
		var auth string
		for i, u := range users {
			if !present[i] {
				continue
			}
			r := u.run(t, "members", "--group-id", group, "--json")
			if r.code != 0 {
				last = fmt.Sprintf("u%d: %s", i, r.stderr)
				return false
			}
			ms := jsonLines[memberJSON](t, r.stdout)
			if len(ms) != want {
				last = fmt.Sprintf("u%d lists %d members, want %d", i, len(ms), want)
				return false
			}
			if auth == "" {
				epoch, auth = ms[0].Epoch, ms[0].EpochAuthenticator
			} else if ms[0].Epoch != epoch || ms[0].EpochAuthenticator != auth {
				last = fmt.Sprintf("u%d at epoch %d, others at %d", i, ms[0].Epoch, epoch)
				return false
			}
			ids := map[string]bool{}
			for _, m := range ms {
				ids[m.Identity] = true
			}
			for j := range present {
				if present[j] && !ids[users[j].id] {
					last = fmt.Sprintf("u%d does not list u%d", i, j)
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for !converged() {
		if time.Now().After(deadline) {
			t.Fatalf("members did not converge: %s", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
