package socketio

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestPacketTypeString(t *testing.T) {
	for typ, want := range map[PacketType]string{
		Connect: "CONNECT", Disconnect: "DISCONNECT", Event: "EVENT", Ack: "ACK",
		ConnectError: "CONNECT_ERROR", BinaryEvent: "BINARY_EVENT", BinaryAck: "BINARY_ACK",
		7: "PacketType(7)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", typ, got, want)
		}
	}
}

func pkt(typ PacketType, nsp string, id int64, data string) Packet {
	p := Packet{Type: typ, Namespace: nsp, ID: id}
	if data != "" {
		p.Data = []byte(data)
	}
	return p
}

func samePacket(a, b Packet) bool {
	return a.Type == b.Type && a.Namespace == b.Namespace && a.Query == b.Query && a.ID == b.ID &&
		a.Attachments == b.Attachments && bytes.Equal(a.Data, b.Data) && (a.Data == nil) == (b.Data == nil)
}

// The wire examples of the protocol notes (§9), without the Engine.IO '4'.
var wireExamples = []struct {
	wire string
	want Packet
}{
	{`0`, pkt(Connect, "/", -1, "")},
	{`0{"token":"123"}`, pkt(Connect, "/", -1, `{"token":"123"}`)},
	{`0/admin,`, pkt(Connect, "/admin", -1, "")},
	{`0/admin,{"token":"123"}`, pkt(Connect, "/admin", -1, `{"token":"123"}`)},
	{`0{"sid":"wZX3oN0bSVIhsaknAAAI"}`, pkt(Connect, "/", -1, `{"sid":"wZX3oN0bSVIhsaknAAAI"}`)},
	{`4{"message":"Not authorized"}`, pkt(ConnectError, "/", -1, `{"message":"Not authorized"}`)},
	{`4/random,{"message":"Invalid namespace"}`, pkt(ConnectError, "/random", -1, `{"message":"Invalid namespace"}`)},
	{`4"Invalid namespace"`, pkt(ConnectError, "/", -1, `"Invalid namespace"`)}, // protocol v4 ERROR
	{`2["chat","hi"]`, pkt(Event, "/", -1, `["chat","hi"]`)},
	{`2/admin,["bar"]`, pkt(Event, "/admin", -1, `["bar"]`)},
	{`212["foo"]`, pkt(Event, "/", 12, `["foo"]`)},
	{`2/admin,7["foo"]`, pkt(Event, "/admin", 7, `["foo"]`)},
	{`2[42,"n"]`, pkt(Event, "/", -1, `[42,"n"]`)},
	{`312["bar"]`, pkt(Ack, "/", 12, `["bar"]`)},
	{`30[]`, pkt(Ack, "/", 0, `[]`)},
	{`1`, pkt(Disconnect, "/", -1, "")},
	{`1/admin,`, pkt(Disconnect, "/admin", -1, "")},
	{`51-["baz",{"_placeholder":true,"num":0}]`,
		Packet{Type: BinaryEvent, Namespace: "/", ID: -1, Attachments: 1, Data: []byte(`["baz",{"_placeholder":true,"num":0}]`)}},
	{`61-15[{"_placeholder":true,"num":0}]`,
		Packet{Type: BinaryAck, Namespace: "/", ID: 15, Attachments: 1, Data: []byte(`[{"_placeholder":true,"num":0}]`)}},
	{`52-/admin,3["up",{"a":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]`,
		Packet{Type: BinaryEvent, Namespace: "/admin", ID: 3, Attachments: 2,
			Data: []byte(`["up",{"a":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]`)}},
	{`0/admin?token=x,`, Packet{Type: Connect, Namespace: "/admin", Query: "token=x", ID: -1}},
	{`0/admin?token=x&a=b,{"k":1}`, Packet{Type: Connect, Namespace: "/admin", Query: "token=x&a=b", ID: -1, Data: []byte(`{"k":1}`)}},
}

func TestWireExamples(t *testing.T) {
	for _, tc := range wireExamples {
		got, err := Decode([]byte(tc.wire))
		if err != nil {
			t.Errorf("Decode(%s): %v", tc.wire, err)
			continue
		}
		if !samePacket(got, tc.want) {
			t.Errorf("Decode(%s) = %+v, want %+v", tc.wire, got, tc.want)
		}
		if enc := Append(nil, tc.want); string(enc) != tc.wire {
			t.Errorf("Append(%+v) = %s, want %s", tc.want, enc, tc.wire)
		}
	}
}

// Forms the decoder accepts that the encoder writes differently.
func TestDecodeLenientForms(t *testing.T) {
	for _, tc := range []struct{ wire, canonical string }{
		{`0/admin`, `0/admin,`},        // nsp runs to the end
		{`1/admin`, `1/admin,`},        // likewise
		{`2/,["a"]`, `2["a"]`},         // explicit root
		{`2012["a"]`, `212["a"]`},      // leading zeros in the ack id
		{`501-["a"]`, `51-["a"]`},      // and in the attachment count
		{`2 ["a"] `, `2 ["a"] `},       // JSON whitespace is kept
		{`3`, `3`},                     // ACK without data, as Node accepts
		{`312`, `312`},                 // likewise with an id
		{`4`, `4`},                     // CONNECT_ERROR without data
		{`0/?q=1,`, `0/?q=1,`},         // query on the root namespace
		{`2/a?b,["x"]`, `2/a?b,["x"]`}, // '?' is only split off on CONNECT
		{`2["\u0063onnected"]`, `2["\u0063onnected"]`},
	} {
		p, err := Decode([]byte(tc.wire))
		if err != nil {
			t.Errorf("Decode(%s): %v", tc.wire, err)
			continue
		}
		if got := Append(nil, p); string(got) != tc.canonical {
			t.Errorf("Append(Decode(%s)) = %s, want %s", tc.wire, got, tc.canonical)
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	for _, tc := range []struct{ name, wire string }{
		{"empty", ``},
		{"bad type digit", `7["a"]`},
		{"type not a digit", `a["a"]`},
		{"reserved connect", `2["connect"]`},
		{"reserved connect_error", `2["connect_error"]`},
		{"reserved disconnect", `2["disconnect"]`},
		{"reserved disconnecting", `2["disconnecting"]`},
		{"reserved newListener", `2["newListener"]`},
		{"reserved removeListener", `2/admin,1["removeListener",1]`},
		{"reserved name escaped", `2["\u0063onnect"]`},
		{"reserved in binary event", `51-["disconnect",{"_placeholder":true,"num":0}]`},
		{"empty array event", `2[]`},
		{"non-array event", `2{"a":1}`},
		{"string event", `2"chat"`},
		{"event name object", `2[{"a":1}]`},
		{"event name null", `2[null]`},
		{"event name bool", `2[true]`},
		{"event without payload", `2`},
		{"event without payload after nsp", `2/admin,`},
		{"event without payload after id", `21`},
		{"attachments without dash", `51["a"]`},
		{"attachments missing", `5-["a"]`},
		{"attachments at end", `51`},
		{"binary type alone", `5`},
		{"too many attachments", `511-["a"]`},
		{"huge attachment count", `599999999999999999999999-["a"]`},
		{"bad JSON", `2["a",]`},
		{"truncated JSON", `2["a"`},
		{"trailing garbage", `2["a"]x`},
		{"non-digit ack id", `2x["a"]`},
		{"digits then letters", `21a["a"]`},
		{"huge ack id", `29007199254740992["a"]`},
		{"overflowing ack id", `299999999999999999999999999["a"]`},
		{"CONNECT with array", `0["a"]`},
		{"CONNECT with string", `0"a"`},
		{"CONNECT with null", `0null`},
		{"DISCONNECT with payload", `1{}`},
		{"DISCONNECT with array", `1/admin,[]`},
		{"ACK with object", `31{"a":1}`},
		{"CONNECT_ERROR with array", `4["a"]`},
		{"CONNECT_ERROR with number", `4-1`},
		{"CONNECT_ERROR with bool", `4true`},
		{"whitespace payload", `2 `},
		{"placeholder out of range", `51-["a",{"_placeholder":true,"num":1}]`},
		{"placeholder negative", `51-["a",{"_placeholder":true,"num":-1}]`},
		{"placeholder fractional", `51-["a",{"_placeholder":true,"num":0.5}]`},
		{"placeholder num string", `51-["a",{"_placeholder":true,"num":"0"}]`},
		{"placeholder without num", `51-["a",{"_placeholder":true}]`},
		{"nested placeholder out of range", `61-1[{"x":[{"_placeholder":true,"num":3}]}]`},
		{"placeholder with no attachments", `50-["a",{"_placeholder":true,"num":0}]`},
	} {
		p, err := Decode([]byte(tc.wire))
		if err == nil {
			t.Errorf("%s: Decode(%s) = %+v, want error", tc.name, tc.wire, p)
		} else if !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("%s: error %v does not wrap ErrInvalidPacket", tc.name, err)
		}
	}
}

func TestDecodeMaxAttachmentsOption(t *testing.T) {
	wire := []byte(`512-["a"]`)
	if _, err := Decode(wire); err == nil {
		t.Fatal("12 attachments accepted by default")
	}
	p, err := DecodeOptions{MaxAttachments: 12}.Decode(wire)
	if err != nil || p.Attachments != 12 {
		t.Fatalf("with MaxAttachments 12: %+v, %v", p, err)
	}
	huge := DecodeOptions{MaxAttachments: math.MaxInt}
	if _, err := huge.Decode([]byte(`59999999999999999999999-["a"]`)); err == nil {
		t.Fatal("attachment count overflow accepted")
	}
}

func TestPlaceholderRules(t *testing.T) {
	for _, tc := range []struct {
		wire string
		ok   bool
	}{
		// Not a placeholder unless _placeholder is exactly true.
		{`51-["a",{"_placeholder":"true","num":9}]`, true},
		{`51-["a",{"_placeholder":false,"num":9}]`, true},
		// Last duplicate key wins, as in JSON.parse.
		{`51-["a",{"_placeholder":true,"num":9,"num":0}]`, true},
		{`51-["a",{"_placeholder":true,"_placeholder":false,"num":9}]`, true},
		{`51-["a",{"_placeholder":false,"_placeholder":true,"num":9}]`, false},
		// Escaped keys are the same keys.
		{`51-["a",{"\u005fplaceholder":true,"num":5}]`, false},
		// Node replaces a placeholder whole, so what is inside is not checked.
		{`51-["a",{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":7}}]`, true},
		{`51-["a",{"_placeholder":true,"num":1e0}]`, false},
		{`52-["a",{"_placeholder":true,"num":1e0}]`, true},
		// Placeholders in a plain EVENT are just objects.
		{`2["a",{"_placeholder":true,"num":5}]`, true},
	} {
		_, err := Decode([]byte(tc.wire))
		if (err == nil) != tc.ok {
			t.Errorf("Decode(%s) error = %v, want ok=%v", tc.wire, err, tc.ok)
		}
	}
}

func TestDecodeDeepNestingIsLinear(t *testing.T) {
	// A deeply nested binary payload must not take quadratic time.
	const depth = 4000 // encoding/json allows 10000 levels; this is 8000
	var b strings.Builder
	b.WriteString(`51-["a",`)
	for range depth {
		b.WriteString(`{"k":[`)
	}
	b.WriteString(`{"_placeholder":true,"num":0}`)
	for range depth {
		b.WriteString(`]}`)
	}
	b.WriteString(`]`)
	if _, err := Decode([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

func TestAppendDefaults(t *testing.T) {
	for _, tc := range []struct {
		p    Packet
		want string
	}{
		{Packet{Type: Connect, ID: -1}, `0`},                     // "" namespace means "/"
		{Packet{Type: Connect, Query: "a=1", ID: -1}, `0/?a=1,`}, // query forces the namespace
		{Packet{Type: BinaryEvent, ID: -1, Data: []byte(`["a"]`)}, `50-["a"]`},
		{Packet{Type: Event, ID: -1, Attachments: 3, Data: []byte(`["a"]`)}, `2["a"]`}, // count only for binary
	} {
		if got := Append(nil, tc.p); string(got) != tc.want {
			t.Errorf("Append(%+v) = %s, want %s", tc.p, got, tc.want)
		}
	}
}

func TestDecodeAliasesInput(t *testing.T) {
	in := []byte(`2["a"]`)
	p, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if &p.Data[0] != &in[1] {
		t.Error("Data does not alias the input")
	}
	if cap(p.Data) != len(p.Data) {
		t.Error("Data capacity not capped: an append could overwrite the caller's buffer")
	}
}

const chatEvent = `2["message",{"node":"n1","from":"abc","msg":"hello","ts":1700000000000}]`

func BenchmarkDecode(b *testing.B) {
	in := []byte(chatEvent)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	p, err := Decode([]byte(chatEvent))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	b.SetBytes(int64(len(chatEvent)))
	for b.Loop() {
		buf = Append(buf[:0], p)
	}
}

func BenchmarkArgs(b *testing.B) {
	data := []byte(chatEvent[1:])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Args(data); err != nil {
			b.Fatal(err)
		}
	}
}
