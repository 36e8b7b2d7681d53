package api_test

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

func durationpbMillis(ms int) *durationpb.Duration {
	return durationpb.New(time.Duration(ms) * time.Millisecond)
}
