package engineio

import (
	"errors"
	"testing"
)

func TestPayloadV3StringRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		wire string
		pkts []Packet
	}{
		{"euro is one unit", "6:4hello2:4€", []Packet{text(Message, "hello"), text(Message, "€")}},
		{"emoji is two units", "3:4😀", []Packet{text(Message, "😀")}},
		{"mixed BMP and astral", "7:4a€😀b€", []Packet{text(Message, "a€😀b€")}},
		{"base64 binary", "10:b4AQIDBA==", []Packet{binPacket(1, 2, 3, 4)}},
		{"text then base64", "6:4hello10:b4AQIDBA==", []Packet{text(Message, "hello"), binPacket(1, 2, 3, 4)}},
		{"empty binary", "2:b4", []Packet{binPacket()}},
		{"control packets", "1:11:61:3", []Packet{text(Close, ""), text(Noop, ""), text(Pong, "")}},
		{"open then connect", `12:0{"sid":"s"}2:40`, []Packet{text(Open, `{"sid":"s"}`), text(Message, "0")}},
		{"digit in data", "3:412", []Packet{text(Message, "12")}},
		{"colon in data", "3:4:x", []Packet{text(Message, ":x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendPayloadV3String(nil, tt.pkts); string(got) != tt.wire {
				t.Errorf("AppendPayloadV3String = %q, want %q", got, tt.wire)
			}
			got, err := collect(DecodePayloadV3String, []byte(tt.wire))
			if err != nil {
				t.Fatalf("DecodePayloadV3String(%q): %v", tt.wire, err)
			}
			if !samePackets(got, tt.pkts) {
				t.Errorf("DecodePayloadV3String(%q) = %s, want %s", tt.wire, formatPackets(got), formatPackets(tt.pkts))
			}
		})
	}
}

func TestPayloadV3StringEmpty(t *testing.T) {
	if got := AppendPayloadV3String(nil, nil); string(got) != "0:" {
		t.Errorf("empty batch encodes as %q, want \"0:\"", got)
	}
	for _, body := range []string{"0:", "0:0:"} {
		got, err := collect(DecodePayloadV3String, []byte(body))
		if err != nil || len(got) != 0 {
			t.Errorf("DecodePayloadV3String(%q) = %s, %v; want no packets", body, formatPackets(got), err)
		}
	}
	got, err := collect(DecodePayloadV3String, []byte("0:1:1"))
	if err != nil || !samePackets(got, []Packet{text(Close, "")}) {
		t.Errorf("empty record before a packet: got %s, %v", formatPackets(got), err)
	}
}

func TestDecodePayloadV3StringInvalid(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"empty", ""},
		{"no length", ":4hello"},
		{"no colon", "6"},
		{"digits only", "12"},
		{"length past end", "7:4hello"},
		{"length far past end", "99999999999999999999999999:4"},
		{"bad length digit", "6x:4hello"},
		{"negative length", "-1:4"},
		{"length counts bytes not units", "4:4€"},
		{"length splits a surrogate pair", "2:4😀"},
		{"unknown type", "1:7"},
		{"letter type", "2:xy"},
		{"base64 without type", "1:b"},
		{"base64 bad type", "3:bxAQ"},
		{"bad base64", "4:b4A="},
		{"base64 newline", "6:b4AQ\n="},
		{"trailing garbage", "1:1x"},
		{"second record truncated", "1:12:4"},
		{"short length leaves junk", "5:4hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect(DecodePayloadV3String, []byte(tt.body))
			wantErr(t, err, ErrInvalidPayload)
		})
	}
}

func TestDecodePayloadV3StringStopsOnCallbackError(t *testing.T) {
	calls := 0
	err := DecodePayloadV3String([]byte("1:11:61:3"), func(Packet) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("err = %v after %d calls, want errStop after 1", err, calls)
	}
}

func TestUTF16Len(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{
		{"", 0}, {"hello", 5}, {"€", 1}, {"😀", 2}, {"a€😀", 4},
		{"\xff", 1}, {"\xe2\x82", 2}, {"\xed\xa0\x80", 3}, // invalid bytes count one each
	}
	for _, tt := range tests {
		if got := utf16Len([]byte(tt.s)); got != tt.want {
			t.Errorf("utf16Len(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestPayloadV3BinaryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		pkts []Packet
	}{
		{
			"notes example",
			[]byte{0x00, 0x06, 0xFF, 0x34, 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x01, 0x05, 0xFF, 0x04, 0x01, 0x02, 0x03, 0x04},
			[]Packet{text(Message, "hello"), binPacket(1, 2, 3, 4)},
		},
		{"string length is UTF-8 bytes", append([]byte{0x00, 0x04, 0xFF, '4'}, "€"...), []Packet{text(Message, "€")}},
		{"two-digit length", append([]byte{0x00, 0x01, 0x01, 0xFF, '4'}, "0123456789"...), []Packet{text(Message, "0123456789")}},
		{"empty binary", []byte{0x01, 0x01, 0xFF, 0x04}, []Packet{binPacket()}},
		{"noop", []byte{0x00, 0x01, 0xFF, '6'}, []Packet{text(Noop, "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendPayloadV3Binary(nil, tt.pkts); string(got) != string(tt.wire) {
				t.Errorf("AppendPayloadV3Binary = % x, want % x", got, tt.wire)
			}
			got, err := collect(DecodePayloadV3Binary, tt.wire)
			if err != nil {
				t.Fatalf("DecodePayloadV3Binary(% x): %v", tt.wire, err)
			}
			if !samePackets(got, tt.pkts) {
				t.Errorf("DecodePayloadV3Binary = %s, want %s", formatPackets(got), formatPackets(tt.pkts))
			}
		})
	}
}

func TestDecodePayloadV3BinaryInvalid(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"bad marker", []byte{0x02, 0x01, 0xFF, '6'}},
		{"ascii marker", []byte{'0', 0x01, 0xFF, '6'}},
		{"marker only", []byte{0x00}},
		{"empty length", []byte{0x00, 0xFF, '6'}},
		{"ascii length digit", []byte{0x00, '1', 0xFF, '6'}},
		{"digit value 10", []byte{0x00, 0x0A, 0xFF, '6'}},
		{"no 0xFF", []byte{0x00, 0x01}},
		{"too many digits", []byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, '6'}},
		{"huge length", []byte{0x00, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0xFF, '6'}},
		{"length past end", []byte{0x00, 0x09, 0xFF, '4', 'h', 'i'}},
		{"zero-length string packet", []byte{0x00, 0x00, 0xFF}},
		{"zero-length binary packet", []byte{0x01, 0x00, 0xFF}},
		{"unknown string type", []byte{0x00, 0x01, 0xFF, '7'}},
		{"unknown binary type", []byte{0x01, 0x01, 0xFF, 0x07}},
		{"ascii type in binary packet", []byte{0x01, 0x01, 0xFF, '4'}},
		{"bad second record", []byte{0x00, 0x01, 0xFF, '6', 0x05}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect(DecodePayloadV3Binary, tt.body)
			wantErr(t, err, ErrInvalidPayload)
		})
	}
}

func TestDecodePayloadV3BinaryAcceptsLeadingZeros(t *testing.T) {
	got, err := collect(DecodePayloadV3Binary, []byte{0x00, 0, 0, 1, 0xFF, '6'})
	if err != nil || !samePackets(got, []Packet{text(Noop, "")}) {
		t.Errorf("got %s, %v", formatPackets(got), err)
	}
}

func TestNeedsV3Binary(t *testing.T) {
	textOnly := []Packet{text(Message, "a")}
	mixed := []Packet{text(Message, "a"), binPacket(1)}
	tests := []struct {
		name string
		pkts []Packet
		b64  bool
		want bool
	}{
		{"empty", nil, false, false},
		{"text only", textOnly, false, false},
		{"binary, client takes binary", mixed, false, true},
		{"binary, client asked b64", mixed, true, false},
	}
	for _, tt := range tests {
		if got := NeedsV3Binary(tt.pkts, tt.b64); got != tt.want {
			t.Errorf("%s: NeedsV3Binary = %v, want %v", tt.name, got, tt.want)
		}
	}
}
