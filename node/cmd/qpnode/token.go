package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// runToken serves "qpnode token create": it stores a new registration
// token in the node's store (the same --data-dir or --postgres as the
// node, which may be running) and prints it on stdout, once. The store
// keeps only its hash.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: qpnode token create [--uses N] [--expires 7d] [--data-dir DIR | --postgres CONNSTRING]")
		return errors.New("token: want the subcommand create")
	}
	o := &options{}
	fs := flag.NewFlagSet("qpnode token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dataDir, "data-dir", env("QPQ_DATA_DIR", "data"), "the node's data directory, holding node.db (env QPQ_DATA_DIR)")
	fs.StringVar(&o.postgres, "postgres", env("QPQ_POSTGRES", ""), "the nodes' PostgreSQL database instead (env QPQ_POSTGRES)")
	uses := fs.Int("uses", 1, "how many identities may register with the token")
	expires := fs.String("expires", "7d", "how long the token stays good (a Go duration, or days as 30d)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token create: unexpected arguments: %v", fs.Args())
	}
	if *uses <= 0 {
		return fmt.Errorf("token create: --uses %d: want at least 1", *uses)
	}
	life, err := parseDays(*expires)
	if err != nil || life <= 0 {
		return fmt.Errorf("token create: --expires %q: want a positive duration such as 24h or 30d", *expires)
	}
	st, err := openStore(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	secret, hash := store.NewToken()
	until := time.Now().Add(life)
	if err := st.CreateToken(ctx, hash, *uses, until); err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "registration token for %d identit%s, good until %s; give it to qpd as --registration-token or QPQ_REGISTRATION_TOKEN\n",
		*uses, map[bool]string{true: "y", false: "ies"}[*uses == 1], until.UTC().Format(time.RFC3339))
	return nil
}

// parseDays parses a Go duration or a whole number of days ("30d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// parseBytes parses a size in bytes with an optional KiB, MiB, GiB or TiB
// suffix.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for i, suf := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if n, ok := strings.CutSuffix(s, suf); ok {
			s, mult = n, int64(1)<<(10*(i+1))
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want bytes, or a number with KiB, MiB, GiB or TiB", s)
	}
	return n * mult, nil
}
