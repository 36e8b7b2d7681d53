package interop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/quicproquo/quicproquo/internal/mls/interop/mlsclientpb"
)

// startInteropServer serves a fresh Server on a loopback TCP port and
// returns a gRPC client connected to it.
func startInteropServer(t testing.TB) pb.MLSClientClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterMLSClientServer(srv, NewServer(nil))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewMLSClientClient(conn)
}

// interopConfigs are the scenario files the driver runs, from testdata.
// reinit.json and branch.json add about 15 s over the whole matrix.
// deep_random.json is not among them: its single 1670-step script takes
// about 25 s for one suite and one combination, so over the matrix it
// would take minutes; TestInteropDeepRandom runs it once instead.
var interopConfigs = []string{"application.json", "welcome_join.json", "commit.json", "external_join.json", "external_proposals.json",
	"reinit.json", "branch.json"}

// interopUnsupported lists scripts that stop on codes.Unimplemented because
// our MLS does not do what they need, with the reason (none at present:
// every script of interopConfigs passes). Any other script
// that stops on Unimplemented fails the test, and so does a listed script
// that starts to pass (so the list cannot go stale).
var interopUnsupported = map[string]string{}

// TestInteropScenarios runs the upstream interop scenarios between two
// instances of our MLSClient server over gRPC on loopback. Each script runs
// for every suite the server supports (suite 1 only with -short), with
// handshake messages as PublicMessage and as PrivateMessage, and with the
// actors spread over the two instances both ways round (for suites other
// than 1, public handshake one way round and private the other).
func TestInteropScenarios(t *testing.T) {
	a, b := startInteropServer(t), startInteropServer(t)
	ctx := context.Background()
	sr, err := a.SupportedCiphersuites(ctx, &pb.SupportedCiphersuitesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	suites := sr.Ciphersuites
	if len(suites) == 0 {
		t.Fatal("server supports no cipher suite")
	}
	if testing.Short() {
		suites = []uint32{1}
	}
	for _, file := range interopConfigs {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		passed, total, skipped := 0, 0, 0
		for _, name := range cfg.ScriptNames() {
			script := cfg.Scripts[name]
			key := file + "/" + name
			total++
			ok := t.Run(strings.TrimSuffix(file, ".json")+"/"+name, func(t *testing.T) {
				unsupported := false
				for _, suite := range suites {
					for _, encrypt := range []bool{false, true} {
						for flip := 0; flip < 2; flip++ {
							if suite != 1 && flip != boolInt(encrypt) {
								continue // other suites: two of the four combinations
							}
							run := &ScriptRun{Suite: suite, EncryptHandshake: encrypt, Clients: assignActors(script, a, b, flip)}
							rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
							err := run.Run(rctx, script)
							cancel()
							var se *StepError
							if errors.As(err, &se) && se.Unimplemented() {
								if _, listed := interopUnsupported[key]; !listed {
									t.Fatalf("suite %d encrypt=%v: unsupported, not listed: %v", suite, encrypt, err)
								}
								unsupported = true
								continue
							}
							if err != nil {
								t.Fatalf("suite %d encrypt=%v flip=%d: %v", suite, encrypt, flip, err)
							}
						}
					}
				}
				if reason, listed := interopUnsupported[key]; listed {
					if !unsupported {
						t.Fatalf("%s passes now: take it off interopUnsupported", key)
					}
					t.Skipf("unsupported: %s", reason)
				}
			})
			switch {
			case ok && interopUnsupported[key] != "":
				skipped++
			case ok:
				passed++
			}
		}
		msg := fmt.Sprintf("interop %s: %d/%d scripts passed", file, passed, total)
		if skipped > 0 {
			msg += fmt.Sprintf(" (%d unsupported)", skipped)
		}
		t.Log(msg)
	}
}

// assignActors spreads a script's actors over the two clients, alternating
// in sorted order; flip swaps the two.
func assignActors(s Script, a, b pb.MLSClientClient, flip int) map[string]pb.MLSClientClient {
	out := map[string]pb.MLSClientClient{}
	for i, actor := range s.Actors() {
		if (i+flip)%2 == 0 {
			out[actor] = a
		} else {
			out[actor] = b
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
