package interop

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/quicproquo/quicproquo/internal/mls/interop/mlsclientpb"
)

// TestCommandServes builds cmd/mls-interop, runs it as a process on a free
// port and talks to it over gRPC.
func TestCommandServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "mls-interop")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mls-interop")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("mls-interop exit after SIGINT: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("mls-interop did not stop on SIGINT")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewMLSClientClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name, err := c.Name(ctx, &pb.NameRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if name.Name != Name {
		t.Fatalf("Name = %q, want %q", name.Name, Name)
	}
	sr, err := c.SupportedCiphersuites(ctx, &pb.SupportedCiphersuitesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range sr.Ciphersuites {
		found = found || s == 1
	}
	if !found {
		t.Fatalf("suites %v lack suite 1", sr.Ciphersuites)
	}
	if bad := exec.Command(bin, "--port", "70000").Run(); bad == nil {
		t.Fatal("--port 70000 accepted")
	}
}
