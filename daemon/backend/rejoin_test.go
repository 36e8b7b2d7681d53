package backend

import (
	"bytes"
	"errors"
	"testing"
)

func TestControlRoundTrip(t *testing.T) {
	gid := bytes.Repeat([]byte{9}, 16)
	for _, c := range []struct {
		kind byte
		body []byte
	}{{controlGroupInfoRequest, nil}, {controlGroupInfo, []byte("group info")}} {
		kind, g, body, err := parseControl(appendControl(nil, c.kind, gid, c.body))
		if err != nil || kind != c.kind || !bytes.Equal(g, gid) || !bytes.Equal(body, c.body) {
			t.Errorf("kind %d: %d %x %q %v", c.kind, kind, g, body, err)
		}
	}
	for _, bad := range [][]byte{
		nil,
		[]byte("QPQC"),
		appendControl(nil, 3, gid, nil),
		appendControl(nil, controlGroupInfoRequest, gid[:5], nil),
		appendControl(nil, controlGroupInfoRequest, gid, []byte("x")),
		append([]byte("QPQC"), make([]byte, maxControlSize)...),
	} {
		if _, _, _, err := parseControl(bad); !errors.Is(err, errBadControl) {
			t.Errorf("parseControl(%.20x): %v", bad, err)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	gid := bytes.Repeat([]byte{9}, 16)
	f.Add(appendControl(nil, controlGroupInfoRequest, gid, nil))
	f.Add(appendControl(nil, controlGroupInfo, gid, []byte{0, 1, 0, 4}))
	f.Add([]byte("QPQC\x01\x10"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, g, body, err := parseControl(b)
		if err != nil {
			return
		}
		if again := appendControl(nil, kind, g, body); !bytes.Equal(again, b) {
			t.Fatalf("round trip of %x gave %x", b, again)
		}
	})
}
