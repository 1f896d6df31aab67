package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestEncodeEvent(t *testing.T) {
	type point struct {
		X int    `json:"x"`
		B []byte `json:"b"` // struct fields go to encoding/json: base64
	}
	for _, tc := range []struct {
		name        string
		nsp         string
		id          int64
		event       string
		args        []Arg
		wire        string
		attachments [][]byte
	}{
		{name: "plain", event: "chat", args: []Arg{"hi"}, id: -1, wire: `2["chat","hi"]`},
		{name: "no args", event: "ping", id: -1, wire: `2["ping"]`},
		{name: "nsp and id", nsp: "/admin", id: 12, event: "foo", wire: `2/admin,12["foo"]`},
		{name: "no HTML escaping", event: "m", id: -1, args: []Arg{"<b>&</b>", map[string]any{"z": 1, "a": "<"}},
			wire: `2["m","<b>&</b>",{"a":"<","z":1}]`},
		{name: "raw JSON kept verbatim", event: "m", id: -1, args: []Arg{json.RawMessage(`{"z": 1,"a":2}`)},
			wire: `2["m",{"z": 1,"a":2}]`},
		{name: "nil and numbers", event: "m", id: -1, args: []Arg{nil, 1.5, int64(-3), true},
			wire: `2["m",null,1.5,-3,true]`},
		{name: "struct", event: "m", id: -1, args: []Arg{point{1, []byte("hi")}, &point{X: 2}},
			wire: `2["m",{"x":1,"b":"aGk="},{"x":2,"b":null}]`},
		{name: "top-level binary", event: "baz", id: -1, args: []Arg{[]byte{1, 2}},
			wire: `51-["baz",{"_placeholder":true,"num":0}]`, attachments: [][]byte{{1, 2}}},
		{name: "nested binary", nsp: "/up", id: 4, event: "file",
			args: []Arg{
				map[string]any{"name": "a.png", "parts": []any{[]byte("p0"), map[string][]byte{"x": []byte("p1")}}},
				[][]byte{[]byte("p2"), nil},
				[2]byte{7, 8},
			},
			wire: `54-/up,4["file",{"name":"a.png","parts":[{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]},` +
				`[{"_placeholder":true,"num":2},{"_placeholder":true,"num":3}],[7,8]]`,
			attachments: [][]byte{[]byte("p0"), []byte("p1"), []byte("p2"), nil}},
		{name: "empty binary", event: "e", id: -1, args: []Arg{[]byte{}},
			wire: `51-["e",{"_placeholder":true,"num":0}]`, attachments: [][]byte{{}}},
	} {
		p, atts, err := EncodeEvent(tc.nsp, tc.id, tc.event, tc.args...)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := Append(nil, p); string(got) != tc.wire {
			t.Errorf("%s: wire %s, want %s", tc.name, got, tc.wire)
		}
		if !equalAttachments(atts, tc.attachments) {
			t.Errorf("%s: attachments %q, want %q", tc.name, atts, tc.attachments)
		}
		if _, err := Decode([]byte(tc.wire)); err != nil {
			t.Errorf("%s: encoded packet does not decode: %v", tc.name, err)
		}
	}
}

func equalAttachments(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestEncodeErrors(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, f := range map[string]func() error{
		"reserved name":     func() error { _, _, err := EncodeEvent("", -1, "disconnect"); return err },
		"bad raw JSON":      func() error { _, _, err := EncodeEvent("", -1, "e", json.RawMessage(`{`)); return err },
		"NaN":               func() error { _, _, err := EncodeEvent("", -1, "e", math.NaN()); return err },
		"cycle":             func() error { _, _, err := EncodeEvent("", -1, "e", cyclic); return err },
		"nsp without slash": func() error { _, _, err := EncodeEvent("admin", -1, "e"); return err },
		"nsp with comma":    func() error { _, _, err := EncodeAck("/a,b", 1); return err },
		"ack without id":    func() error { _, _, err := EncodeAck("", -1, "x"); return err },
		"ack id too big":    func() error { _, _, err := EncodeAck("", MaxAckID+1); return err },
		"event id too big": func() error {
			_, _, err := EncodeEvent("", MaxAckID+1, "e")
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("%s: error %v, want ErrInvalidPacket", name, err)
		}
	}
}

func TestEncodeAck(t *testing.T) {
	p, atts, err := EncodeAck("", 15, []byte("x"), "ok")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(Append(nil, p)), `61-15[{"_placeholder":true,"num":0},"ok"]`; got != want {
		t.Errorf("wire %s, want %s", got, want)
	}
	if len(atts) != 1 || string(atts[0]) != "x" {
		t.Errorf("attachments %q", atts)
	}
	p, _, err = EncodeAck("/admin", 12, "bar")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(Append(nil, p)), `3/admin,12["bar"]`; got != want {
		t.Errorf("wire %s, want %s", got, want)
	}
	p, _, _ = EncodeAck("", 0)
	if got := string(Append(nil, p)); got != `30[]` {
		t.Errorf("empty ack: %s", got)
	}
}

// A chat server reading a binary event, reading its top-level []byte, and
// echoing it back byte for byte.
func TestReconstructorRoundTrip(t *testing.T) {
	p, atts, err := EncodeEvent("/", 3, "upload", []byte("top"), map[string]any{"deep": []byte("nested")}, "tail")
	if err != nil {
		t.Fatal(err)
	}
	wire := Append(nil, p)
	got, err := Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReconstructor(got)
	for i, a := range atts {
		done, err := r.Add(a)
		if err != nil {
			t.Fatal(err)
		}
		if done != (i == len(atts)-1) {
			t.Fatalf("Add #%d: done = %v", i, done)
		}
	}
	vals, err := r.Args()
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 4 {
		t.Fatalf("%d values", len(vals))
	}
	if name, _ := EventName(r.Packet().Data); name != "upload" {
		t.Errorf("event name %q", name)
	}
	if !vals[1].IsBinary || string(vals[1].Binary) != "top" || string(vals[1].Raw) != `{"_placeholder":true,"num":0}` {
		t.Errorf("top-level binary value: %+v", vals[1])
	}
	if vals[2].IsBinary || string(vals[2].Raw) != `{"deep":{"_placeholder":true,"num":1}}` {
		t.Errorf("nested binary should stay raw: %+v", vals[2])
	}
	if vals[3].IsBinary || string(vals[3].Raw) != `"tail"` {
		t.Errorf("plain value: %+v", vals[3])
	}
	if echo := Append(nil, r.Packet()); !bytes.Equal(echo, wire) {
		t.Errorf("echo %s, want %s", echo, wire)
	}
	if !equalAttachments(r.Attachments(), atts) {
		t.Errorf("attachments %q, want %q", r.Attachments(), atts)
	}
}

func TestReconstructorCounts(t *testing.T) {
	p, err := Decode([]byte(`52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReconstructor(p)
	if r.Done() {
		t.Fatal("done before any attachment")
	}
	if done, err := r.Add([]byte("0")); done || err != nil {
		t.Fatalf("first Add: %v %v", done, err)
	}
	if _, err := r.Args(); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("Args with too few attachments: %v", err)
	}
	if done, err := r.Add([]byte("1")); !done || err != nil {
		t.Fatalf("second Add: %v %v", done, err)
	}
	if _, err := r.Add([]byte("2")); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("third Add: %v, want ErrInvalidPacket", err)
	}
	if n := len(r.Attachments()); n != 2 {
		t.Errorf("%d attachments kept", n)
	}

	zero, err := Decode([]byte(`50-["a"]`))
	if err != nil {
		t.Fatal(err)
	}
	r = NewReconstructor(zero)
	if !r.Done() {
		t.Error("a packet announcing no attachment is complete at once")
	}
	if _, err := r.Add(nil); err == nil {
		t.Error("attachment accepted for a packet announcing none")
	}
}

// A hand-built packet whose placeholder points past its attachments.
func TestReconstructorBadPlaceholder(t *testing.T) {
	p := Packet{Type: BinaryEvent, ID: -1, Attachments: 1, Data: []byte(`["a",{"_placeholder":true,"num":4}]`)}
	r := NewReconstructor(p)
	if _, err := r.Add([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Args(); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("Args: %v, want ErrInvalidPacket", err)
	}
}

func TestArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{``, nil, true},
		{`[]`, nil, true},
		{` [ ] `, nil, true},
		{`["a",1,{"b":[2,"]"]},null,"\"]"]`, []string{`"a"`, `1`, `{"b":[2,"]"]}`, `null`, `"\"]"`}, true},
		{`[ 1 , true ,"x" ]`, []string{`1`, `true`, `"x"`}, true},
		{`{"a":1}`, nil, false},
		{`[1,]`, nil, false},
		{`"a"`, nil, false},
	} {
		got, err := Args([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("Args(%s) error %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("Args(%s) = %q, want %q", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tc.want[i] {
				t.Errorf("Args(%s)[%d] = %s, want %s", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestEventName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`["chat","hi"]`, "chat", true},
		{`[ "a\"b" ]`, `a"b`, true},
		{`["\u00e9"]`, "é", true},
		{`[12,"x"]`, "12", true},
		{`[-1.5e3]`, "-1.5e3", true},
		{`[""]`, "", true},
		{`["connect"]`, "", false},
		{`[]`, "", false},
		{`[null]`, "", false},
		{`{}`, "", false},
		{``, "", false},
	} {
		got, err := EventName([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("EventName(%s) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
