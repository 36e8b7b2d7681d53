package qpd

import "os"

func writeTestFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
