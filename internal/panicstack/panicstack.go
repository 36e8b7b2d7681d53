// Package panicstack describes where a recovered panic happened — function,
// file and line of each frame — without the argument values that
// runtime/debug.Stack prints, which may hold user data or key material.
// Every recover in the project logs through it.
package panicstack

import (
	"fmt"
	"runtime"
	"strings"
)

// Where returns the stack of its caller's caller and up, one frame a line
// ("function (file:line)"). Call it from the deferred function that
// recovered, so the frames start at the code that panicked.
func Where() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	var where []string
	for {
		f, more := frames.Next()
		where = append(where, fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line))
		if !more {
			break
		}
	}
	return strings.Join(where, "\n")
}
