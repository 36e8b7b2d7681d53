package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
	"google.golang.org/protobuf/types/known/durationpb"
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

// acceptLink makes the daemon the new device of the person whose primary
// shows code. It prints this device's key as soon as the request is at
// the node (to compare with the primary's screen), then the result.
func (a *app) acceptLink(ctx context.Context, code, name string, timeout time.Duration) error {
	if timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	wait := timeout
	if wait == 0 {
		wait = 2 * time.Minute
	}
	return a.call(ctx, wait, func(ctx context.Context, c *client.Client) error {
		req := &daemonv1.AcceptLinkRequest{Code: code, Name: name}
		if timeout > 0 {
			req.Timeout = durationpb.New(timeout)
		}
		stream, err := c.AcceptLinkSteps(ctx, req)
		if err != nil {
			return err
		}
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return errors.New("link: the daemon ended the exchange without an answer")
			}
			if err != nil {
				return err
			}
			if d := m.GetDevice(); d != "" {
				if a.json {
					err = a.printJSON(map[string]any{"this_device": d})
				} else {
					err = a.printf("this device's key is %s: compare it with the key the primary device shows\n", d)
				}
				if err != nil {
					return err
				}
				continue
			}
			r := m.GetDone()
			if r == nil {
				continue
			}
			if a.json {
				return a.printJSON(map[string]any{"identity": r.GetIdentity(), "device": r.GetDevice(), "contacts": r.GetContacts(), "groups": r.GetGroups()})
			}
			return a.printf("linked: identity %s, this device %s; %d contact(s); %d group(s) to join\n",
				r.GetIdentity(), r.GetDevice(), r.GetContacts(), r.GetGroups())
		}
	})
}
