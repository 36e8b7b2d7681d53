package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

func runRegistration(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Registration/Register", testRegister},
		{"Registration/TokenUses", testTokenUses},
		{"Registration/TokenExpires", testTokenExpires},
		{"Registration/TokenInvalid", testTokenInvalid},
		{"Registration/ConcurrentRedeem", testTokenConcurrentRedeem},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func wantRegistered(t *testing.T, s store.Store, id []byte, want bool) {
	t.Helper()
	got, err := s.Registered(testCtx(t), id)
	noErr(t, "Registered", err)
	if got != want {
		t.Fatalf("Registered(%x) = %v, want %v", id[:4], got, want)
	}
}

func testRegister(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	a, b := Key("a"), Key("b")
	wantRegistered(t, s, a, false)
	noErr(t, "Register", s.Register(ctx, a))
	noErr(t, "Register again", s.Register(ctx, a))
	wantRegistered(t, s, a, true)
	wantRegistered(t, s, b, false)
	for name, k := range badKeys() {
		wantErr(t, "Register "+name, s.Register(ctx, k), store.ErrInvalid)
		_, err := s.Registered(ctx, k)
		wantErr(t, "Registered "+name, err, store.ErrInvalid)
	}
}

func testTokenUses(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	secret, hash := store.NewToken()
	noErr(t, "CreateToken", s.CreateToken(ctx, hash, 2, time.Now().Add(time.Hour)))
	if store.TokenHash(" "+secret+"\n") != hash {
		t.Fatal("TokenHash does not ignore surrounding white space")
	}
	noErr(t, "redeem 1", s.RedeemToken(ctx, Key("a"), hash))
	// An identity already registered spends nothing.
	noErr(t, "redeem again", s.RedeemToken(ctx, Key("a"), hash))
	noErr(t, "redeem 2", s.RedeemToken(ctx, Key("b"), hash))
	wantErr(t, "redeem 3 (used up)", s.RedeemToken(ctx, Key("c"), hash), store.ErrBadToken)
	wantRegistered(t, s, Key("a"), true)
	wantRegistered(t, s, Key("b"), true)
	wantRegistered(t, s, Key("c"), false)
}

func testTokenExpires(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	_, hash := store.NewToken()
	noErr(t, "CreateToken", s.CreateToken(ctx, hash, 5, time.Now().Add(-time.Second)))
	wantErr(t, "redeem expired", s.RedeemToken(ctx, Key("a"), hash), store.ErrBadToken)
	wantRegistered(t, s, Key("a"), false)
}

func testTokenInvalid(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	_, hash := store.NewToken()
	wantErr(t, "redeem unknown", s.RedeemToken(ctx, Key("a"), hash), store.ErrBadToken)
	wantErr(t, "zero uses", s.CreateToken(ctx, hash, 0, time.Now().Add(time.Hour)), store.ErrInvalid)
	noErr(t, "CreateToken", s.CreateToken(ctx, hash, 1, time.Now().Add(time.Hour)))
	wantErr(t, "same hash twice", s.CreateToken(ctx, hash, 1, time.Now().Add(time.Hour)), store.ErrInvalid)
	for name, k := range badKeys() {
		wantErr(t, "redeem for "+name, s.RedeemToken(ctx, k, hash), store.ErrInvalid)
	}
	noErr(t, "redeem", s.RedeemToken(ctx, Key("a"), hash))
}

// testTokenConcurrentRedeem: 10 identities race for a token of 3 uses;
// exactly 3 win.
func testTokenConcurrentRedeem(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	_, hash := store.NewToken()
	noErr(t, "CreateToken", s.CreateToken(ctx, hash, 3, time.Now().Add(time.Hour)))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  int
		errs []error
	)
	for i := range 10 {
		wg.Go(func() {
			err := s.RedeemToken(ctx, Key(string(rune('a'+i))), hash)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if won != 3 {
		t.Fatalf("%d redemptions won, want 3 (errors %v)", won, errs)
	}
	for _, err := range errs {
		wantErr(t, "losing redemption", err, store.ErrBadToken)
	}
}
