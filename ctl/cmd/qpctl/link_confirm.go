package main

import (
	"bufio"
	"context"
	"strings"
	"time"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// linkAskWait is how long `qpctl link` waits for the person's answer (the
// daemon refuses on its own after 90 s).
const linkAskWait = 90 * time.Second

// answerLinkRequest shows the device asking to be linked and answers the
// daemon: yes without asking, else the answer typed on stdin ([y/N]).
func (a *app) answerLinkRequest(ctx context.Context, c *client.Client, d *daemonv1.Device, yes bool) error {
	if a.json {
		if err := a.printJSON(map[string]any{"request": d.GetKey(), "name": d.GetName()}); err != nil {
			return err
		}
	} else if err := a.printf("device %s (%q) asks to be linked.\ncompare this key with the one the new device shows.\n", d.GetKey(), d.GetName()); err != nil {
		return err
	}
	accept := yes
	if !yes {
		if !a.json {
			if err := a.printf("link it? [y/N] "); err != nil {
				return err
			}
		}
		accept = a.readYes(linkAskWait)
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := c.ConfirmLink(cctx, &daemonv1.ConfirmLinkRequest{Device: d.GetKey(), Accept: accept})
	return err
}

// readYes reads one line from stdin: "y" or "yes" is yes; anything else,
// the end of the input or no line within wait is no.
func (a *app) readYes(wait time.Duration) bool {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(a.stdin).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		s = strings.ToLower(strings.TrimSpace(s))
		return s == "y" || s == "yes"
	case <-time.After(wait):
		return false
	}
}
