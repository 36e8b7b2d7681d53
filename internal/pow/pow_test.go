package pow

import (
	"bytes"
	"context"
	"testing"
)

func TestSolveCheck(t *testing.T) {
	ctx := context.Background()
	ch, id := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, d := range []int{0, 1, 8, 12} {
		n, err := Solve(ctx, ch, id, d)
		if err != nil {
			t.Fatal(err)
		}
		if !Check(ch, id, n, d) {
			t.Fatalf("difficulty %d: Solve's nonce fails Check", d)
		}
	}
	n, _ := Solve(ctx, ch, id, 12)
	// The proof is bound to the challenge and to the identity.
	if Check(bytes.Repeat([]byte{3}, 32), id, n, 12) || Check(ch, bytes.Repeat([]byte{3}, 32), n, 12) {
		t.Fatal("a proof passed for another challenge or identity")
	}
	if Check(ch, id, make([]byte, MaxNonceSize+1), 0) {
		t.Fatal("an oversized nonce passed")
	}
	if _, err := Solve(ctx, ch, id, MaxDifficulty+1); err != ErrTooHard {
		t.Fatalf("Solve above the maximum: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Solve(cctx, ch, id, MaxDifficulty); err == nil {
		t.Fatal("Solve ignored a cancelled context")
	}
}

func BenchmarkSolve16(b *testing.B) {
	ch, id := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for i := 0; b.Loop(); i++ {
		ch[0] = byte(i)
		ch[1] = byte(i >> 8)
		if _, err := Solve(context.Background(), ch, id, 16); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCheck: any challenge, identity, nonce and difficulty give an answer,
// never a panic, and a nonce passes only if its hash has the zero bits.
func FuzzCheck(f *testing.F) {
	ch, id := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	n, _ := Solve(context.Background(), ch, id, 8)
	f.Add(ch, id, n, 8)
	f.Add([]byte{}, []byte{}, []byte{}, 0)
	f.Add(ch, id, make([]byte, MaxNonceSize+1), 1)
	f.Fuzz(func(t *testing.T, ch, id, nonce []byte, d int) {
		ok := Check(ch, id, nonce, d)
		if ok && (len(nonce) > MaxNonceSize || d > MaxDifficulty) {
			t.Fatalf("Check passed a nonce of %d bytes at difficulty %d", len(nonce), d)
		}
		if d <= 0 && len(nonce) <= MaxNonceSize && !ok {
			t.Fatal("difficulty 0 refused a nonce")
		}
	})
}
