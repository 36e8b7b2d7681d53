package client

import (
	"bytes"
	"context"
	"fmt"

	"github.com/quicproquo/quicproquo/internal/pow"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// Registration is how the node registers this connection's identity.
type Registration struct {
	Policy     string // "open", "token", "closed" (or "none": the node checks nothing)
	Registered bool   // the identity is registered already
	Challenge  []byte // open: the connection's proof-of-work challenge
	Difficulty int    // open: the zero bits the proof needs
}

// Registration asks the node how this identity registers.
func (c *Client) Registration(ctx context.Context) (Registration, error) {
	const op = "registration"
	fut, release := c.node.Registration(ctx, nil)
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return Registration{}, callError(op, err)
	}
	res, err := fut.Struct()
	if err != nil {
		return Registration{}, callError(op, err)
	}
	policy, _ := res.Policy()
	ch, _ := res.Challenge()
	return Registration{Policy: policy, Registered: res.Registered(), Challenge: bytes.Clone(ch), Difficulty: int(res.Difficulty())}, nil
}

// Register registers this connection's identity unless it is already:
// with token when it is not empty, else (under the open policy) with a
// proof of work, which takes about 2^difficulty hashes. It fails with
// ErrNotRegistered when the node's policy leaves no way (closed, or token
// without one) and ErrBadToken for a token the node does not take.
func (c *Client) Register(ctx context.Context, token string) error {
	const op = "register"
	reg, err := c.Registration(ctx)
	if err != nil || reg.Registered || reg.Policy == "none" {
		return err
	}
	var nonce []byte
	if token == "" && reg.Policy == "open" {
		c.log.Debug("solving the node's registration proof of work", "difficulty", reg.Difficulty)
		if nonce, err = pow.Solve(ctx, reg.Challenge, c.identity, reg.Difficulty); err != nil {
			return fmt.Errorf("%s: proof of work: %w", op, err)
		}
	}
	return c.register(ctx, token, nonce)
}

// RegisterProof registers with a proof of work solved elsewhere (see
// internal/pow) for this connection's challenge.
func (c *Client) RegisterProof(ctx context.Context, nonce []byte) error {
	return c.register(ctx, "", nonce)
}

func (c *Client) register(ctx context.Context, token string, nonce []byte) error {
	const op = "register"
	fut, release := c.node.Register(ctx, func(p nodecp.NodeService_register_Params) error {
		if err := p.SetToken(token); err != nil {
			return err
		}
		return p.SetNonce(nonce)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err != nil {
		return callError(op, err)
	}
	_, err = fut.Struct()
	return callError(op, err)
}

// NoticeKeyPackagesLow is the payload of the node's notice that this
// identity's KeyPackages run low (see IsNodeNotice).
var NoticeKeyPackagesLow = []byte("qpq-node:keyPackagesLow")

// IsNodeNotice reports whether env is a notice of the node itself: an
// empty sender (every client's enqueue carries its identity) and a payload
// starting "qpq-node:", which no MLS message does.
func IsNodeNotice(env Envelope) bool {
	return len(env.Sender) == 0 && bytes.HasPrefix(env.Payload, []byte("qpq-node:"))
}
