package content

import "testing"

func TestSummary(t *testing.T) {
	s := samples()
	for name, want := range map[string]string{
		"text":         "hello, grüße ✓",
		"reply":        "[reply to aaaaaaaaaaaaaaaa] yes",
		"reaction":     "[reaction 👍 to bbbbbbbbbbbbbbbb]",
		"edit":         "[edit of aaaaaaaaaaaaaaaa] fixed",
		"delete":       "[delete of bbbbbbbbbbbbbbbb]",
		"receipt":      "[delivered aaaaaaaaaaaaaaaa] [read bbbbbbbbbbbbbbbb] [status(9) aaaaaaaaaaaaaaaa]",
		"captioned":    `[attachment "cat.png", image/png, 209715200 bytes] look`,
		"relative exp": "[expires 3600s after sending] gone soon",
		"unknown part": "[unsupported part of disposition 200]",
		"unknown ext":  `[unsupported extension -7] [unsupported extension "x-future"] with extras`,
	} {
		m, err := Parse(mustAppend(t, s[name]))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Summary(); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
