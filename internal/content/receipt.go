package content

import (
	"fmt"
	"math"
	"time"
)

// Status is the state of a message in a receipt, after
// draft-mahy-mimi-message-status.
type Status uint8

// The statuses; others are kept as numbers.
const (
	StatusUnread Status = iota
	StatusDelivered
	StatusRead
	StatusExpired
	StatusDeleted
	StatusHidden
	StatusError
)

func (s Status) String() string {
	names := []string{"unread", "delivered", "read", "expired", "deleted", "hidden", "error"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Receipt is the body of a MediaTypeStatus part: the state of some
// messages at a time.
type Receipt struct {
	At       time.Time // millisecond precision on the wire
	Statuses []MessageStatus
}

// MessageStatus is the state of one message.
type MessageStatus struct {
	ID     MessageID
	Status Status
}

// maxTimestampMillis keeps receipt times within the int64 nanoseconds
// of time.Time.
const maxTimestampMillis = maxSentAt / 1_000_000

// parseReceipt decodes [timestamp, [* [messageId, status]]].
func parseReceipt(field string, b []byte) (*Receipt, error) {
	a, err := array(field, b, 2)
	if err != nil {
		return nil, err
	}
	ms, err := uintField(field+".timestamp", a[0], maxTimestampMillis)
	if err != nil {
		return nil, err
	}
	r := &Receipt{At: time.UnixMilli(int64(ms))}
	list, err := arrayField(field+".statuses", a[1], maxArrayElements)
	if err != nil {
		return nil, err
	}
	for i, raw := range list {
		f := fmt.Sprintf("%s.statuses.%d", field, i)
		e, err := array(f, raw, 2)
		if err != nil {
			return nil, err
		}
		var s MessageStatus
		if s.ID, err = bytesField(f+".messageId", e[0], MaxMessageIDSize); err != nil {
			return nil, err
		}
		if err := checkID(f+".messageId", s.ID); err != nil {
			return nil, err
		}
		n, err := uintField(f+".status", e[1], math.MaxUint8)
		if err != nil {
			return nil, err
		}
		s.Status = Status(n)
		r.Statuses = append(r.Statuses, s)
	}
	return r, nil
}

func (r *Receipt) marshal(field string) ([]byte, error) {
	ms := r.At.UnixMilli()
	if ms < 0 || ms > maxTimestampMillis {
		return nil, fieldErr(field+".timestamp", ErrInvalid, "time %v out of range", r.At)
	}
	list := make([]any, len(r.Statuses))
	for i, s := range r.Statuses {
		list[i] = []any{[]byte(s.ID), uint64(s.Status)}
	}
	b, err := encMode.Marshal([]any{uint64(ms), list})
	if err != nil {
		return nil, fieldErr(field, ErrInvalid, "%v", err)
	}
	return b, nil
}
