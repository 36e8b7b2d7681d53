package api_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// BenchmarkStatusRPC is one Status call over the Unix socket, peer check
// included (no node configured).
func BenchmarkStatusRPC(b *testing.B) {
	dir := daemontest.ShortTempDir(b)
	d := daemontest.StartDaemon(b, daemontest.DaemonConfig{StateDir: filepath.Join(dir, "state"), Socket: filepath.Join(dir, "run", "qpd.sock")})
	c := d.Dial(b)
	ctx := context.Background()
	if _, err := c.Register(ctx, &daemonv1.RegisterRequest{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Status(ctx, &daemonv1.StatusRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessagesRPC reads one page of 50 messages over the socket.
func BenchmarkMessagesRPC(b *testing.B) {
	dir := daemontest.ShortTempDir(b)
	texts := make([]string, 200)
	for i := range texts {
		texts[i] = "message " + string(rune('a'+i%26)) + string(rune('0'+i%10)) + string(rune('A'+i/26))
	}
	apiSeed(b, filepath.Join(dir, "state"), "team", texts...)
	d := daemontest.StartDaemon(b, daemontest.DaemonConfig{StateDir: filepath.Join(dir, "state"), Socket: filepath.Join(dir, "run", "qpd.sock")})
	c := d.Dial(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, err := c.Messages(ctx, &daemonv1.MessagesRequest{Group: "team", AfterSeq: 100, Limit: 50})
		if err != nil || len(r.GetMessages()) != 50 {
			b.Fatalf("%v %v", len(r.GetMessages()), err)
		}
	}
}
