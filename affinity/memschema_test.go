package affinity

import (
	"bytes"
	"testing"

	"github.com/hashicorp/go-memdb"
)

// TestPinKeyIsTheCompoundKey: pinKey makes, without reflection, the bytes that memdb's CompoundIndex
// of three StringFieldIndex made, so listings keep their order and cursors.
func TestPinKeyIsTheCompoundKey(t *testing.T) {
	compound := &memdb.CompoundIndex{Indexes: []memdb.Indexer{
		&memdb.StringFieldIndex{Field: "Pool"},
		&memdb.StringFieldIndex{Field: "Node"},
		&memdb.StringFieldIndex{Field: "SID"},
	}}
	for _, tc := range []struct{ pool, node, sid string }{
		{"chat", "node1", "abc"},
		{"chat", "node10", "a-b_c"},
		{"p", "n", "s"},
		{"Chat", "NODE", "MiXeD"},
		{"pool with space", "n\u00e9", "sid"},
	} {
		r := newRecord(Pin{SID: tc.sid, Pool: tc.pool, Node: tc.node})
		okC, wantObj, errC := compound.FromObject(r)
		okP, gotObj, errP := pinKey{}.FromObject(r)
		if okC != okP || errC != nil || errP != nil || !bytes.Equal(gotObj, wantObj) {
			t.Errorf("FromObject %v: %q %v %v, want %q %v", tc, gotObj, okP, errP, wantObj, okC)
		}
		wantArgs, errC := compound.FromArgs(tc.pool, tc.node, tc.sid)
		gotArgs, errP := pinKey{}.FromArgs(tc.pool, tc.node, tc.sid)
		if errC != nil || errP != nil || !bytes.Equal(gotArgs, wantArgs) {
			t.Errorf("FromArgs %v: %q %v, want %q", tc, gotArgs, errP, wantArgs)
		}
	}
	// The start of a listing: three empty strings.
	want, _ := compound.FromArgs("", "", "")
	if got, err := (pinKey{}).FromArgs("", "", ""); err != nil || !bytes.Equal(got, want) {
		t.Errorf("FromArgs of empty strings: %q %v, want %q", got, err, want)
	}
	for _, bad := range [][]any{{"a", "b"}, {"a", "b", 3}, {}} {
		if _, err := (pinKey{}).FromArgs(bad...); err == nil {
			t.Errorf("FromArgs%v: no error", bad)
		}
	}
	if _, _, err := (pinKey{}).FromObject("not a record"); err == nil {
		t.Error("FromObject of a string: no error")
	}
}
