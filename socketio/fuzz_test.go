package socketio

import (
	"bytes"
	"encoding/json"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, tc := range wireExamples {
		f.Add([]byte(tc.wire))
	}
	for _, s := range []string{
		`2["connect"]`, `2[]`, `5-["a"]`, `51["a"]`, `29007199254740992["a"]`, `0/admin`,
		`2 ["a"] `, `0/?q,`, `51-["a",{"_placeholder":true,"_placeholder":false}]`,
		`52-["a",{"x":{"_placeholder":true,"num":1e0}},{"\u005fplaceholder":true,"num":0}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Decode(in)
		if err != nil {
			return
		}
		enc := Append(nil, p)
		q, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(%q) ok, but its encoding %q fails: %v", in, enc, err)
		}
		if !samePacket(p, q) {
			t.Fatalf("Decode(%q) = %+v; re-decoded from %q as %+v", in, p, enc, q)
		}
		if again := Append(nil, q); !bytes.Equal(again, enc) {
			t.Fatalf("encoding not stable: %q then %q", enc, again)
		}
		if p.Type == Event || p.Type == BinaryEvent {
			if _, err := EventName(p.Data); err != nil {
				t.Fatalf("decoded event %q has no name: %v", in, err)
			}
		}
		if p.Type.IsBinary() {
			r := NewReconstructor(p)
			for range p.Attachments {
				if _, err := r.Add([]byte{1}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.Args(); err != nil && p.Data != nil {
				t.Fatalf("decoded binary packet %q does not reconstruct: %v", in, err)
			}
		}
	})
}

func FuzzArgs(f *testing.F) {
	for _, s := range []string{
		`[]`, `["a",1,{"b":[2,"]"]},null,"\"]"]`, ` [ 1 , true ,"x" ] `, `{"a":1}`, `[1,]`, `null`, ``,
		`["\u00e9",[[[]]],{"":{}}]`, `[-0.5e+3,"\\"]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Args(in)
		_, _ = EventName(in) // must not panic
		var want []json.RawMessage
		werr := json.Unmarshal(in, &want)
		if len(in) == 0 || bytes.Equal(bytes.TrimSpace(in), []byte("null")) {
			return // Args: no arguments / not an array; encoding/json: nil slice
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("Args(%q) error %v, encoding/json error %v", in, err, werr)
		}
		if len(got) != len(want) {
			t.Fatalf("Args(%q) = %q, encoding/json %q", in, got, want)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("Args(%q)[%d] = %q, encoding/json %q", in, i, got[i], want[i])
			}
		}
	})
}

// FuzzPlaceholders checks the single-pass placeholder walk against a plain
// model built on encoding/json (which, like JSON.parse, keeps the last of
// duplicate keys).
func FuzzPlaceholders(f *testing.F) {
	f.Add([]byte(`["a",{"_placeholder":true,"num":0}]`), uint8(1))
	f.Add([]byte(`[{"x":[{"_placeholder":true,"num":1e0}]},{"_placeholder":false}]`), uint8(2))
	f.Add([]byte(`{"\u005fplaceholder":true,"num":0,"_placeholder":true,"y":{"_placeholder":true}}`), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		_, err := checkPlaceholders(data, skipSpace(data, 0), int(n))
		if want := placeholdersOK(v, float64(n)); (err == nil) != want {
			t.Fatalf("checkPlaceholders(%q, %d) error %v, model says ok=%v", data, n, err, want)
		}
	})
}

func placeholdersOK(v any, n float64) bool {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if !placeholdersOK(e, n) {
				return false
			}
		}
	case map[string]any:
		if v["_placeholder"] == true {
			num, ok := v["num"].(float64)
			return ok && num >= 0 && num < n && num == float64(int64(num))
		}
		for _, e := range v {
			if !placeholdersOK(e, n) {
				return false
			}
		}
	}
	return true
}
