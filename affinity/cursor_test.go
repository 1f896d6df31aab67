package affinity

import (
	"errors"
	"slices"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range [][3]string{{"chat", "node1", "sid-1"}, {"", "", ""}, {"a b", "n/1", "x_y-z"}} {
		got, err := decodeCursor(encodeCursor(c[0], c[1], c[2]))
		if err != nil || !slices.Equal(got, c[:]) {
			t.Errorf("decode(encode(%q)) = %q, %v", c, got, err)
		}
	}
	if got, err := decodeCursor(""); got != nil || err != nil {
		t.Errorf(`decodeCursor("") = %q, %v; want the beginning`, got, err)
	}
}

func TestCursorRejectsForeignStrings(t *testing.T) {
	for _, c := range []string{
		"%%%not-a-cursor",                // not base64
		"Y2hhdA",                         // "chat": one part
		encodeCursor("a", "b\x00c", "d"), // four parts
		"Y2hhdA==",                       // padded: not the raw URL encoding
	} {
		if got, err := decodeCursor(c); !errors.Is(err, ErrBadCursor) {
			t.Errorf("decodeCursor(%q) = %q, %v; want ErrBadCursor", c, got, err)
		}
	}
}
