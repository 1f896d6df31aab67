package affinity

import (
	"encoding/base64"
	"strings"
)

// A list cursor names the last pin of a page by its place in the listing order, (pool, node, sid),
// so that both stores resume a listing after it: memory from memdb's (pool, node, sid) index, Redis
// from the node's listing set. Callers see an opaque URL-safe string.

func encodeCursor(pool, node, sid string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pool + "\x00" + node + "\x00" + sid))
}

// decodeCursor returns the cursor's pool, node and sid; nil for "" (the beginning), ErrBadCursor for
// anything encodeCursor did not make.
func decodeCursor(c string) ([]string, error) {
	if c == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 {
		return nil, ErrBadCursor
	}
	return parts, nil
}
