package client

import (
	"context"

	"github.com/quicproquo/quicproquo/schemas/group"
)

// DeclaringCommit submits msg with declared recipient lists, as a client
// that tries to name the group's roster itself would.
func DeclaringCommit(ctx context.Context, c *Client, msg []byte, recipients, welcomeRecipients [][]byte) error {
	fut, release := c.node.SubmitCommit(ctx, func(p group.GroupService_submitCommit_Params) error {
		if err := p.SetMlsMessage(msg); err != nil {
			return err
		}
		if err := setDataList(recipients, p.NewRecipients); err != nil {
			return err
		}
		return setDataList(welcomeRecipients, p.NewWelcomeRecipients)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err == nil {
		_, err = fut.Struct()
	}
	return callError("submit commit", err)
}

// DeclaringFanOut fans msg out with a declared recipient list.
func DeclaringFanOut(ctx context.Context, c *Client, msg []byte, recipients [][]byte) error {
	fut, release := c.node.FanOut(ctx, func(p group.GroupService_fanOut_Params) error {
		if err := p.SetMlsMessage(msg); err != nil {
			return err
		}
		return setDataList(recipients, p.NewRecipients)
	})
	release, err := c.wait(ctx, fut.Future, release)
	defer release()
	if err == nil {
		_, err = fut.Struct()
	}
	return callError("fan out", err)
}
