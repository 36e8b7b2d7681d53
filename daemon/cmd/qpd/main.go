// Command qpd is the per-user quicproquo daemon. See package
// github.com/quicproquo/quicproquo/daemon/qpd.
package main

import (
	"os"

	"github.com/quicproquo/quicproquo/daemon/qpd"
)

func main() { os.Exit(qpd.Main(os.Args[1:])) }
