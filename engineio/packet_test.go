package engineio

import (
	"bytes"
	"testing"
)

func TestPacketTypeString(t *testing.T) {
	tests := []struct {
		t    PacketType
		want string
	}{
		{Open, "open"}, {Close, "close"}, {Ping, "ping"}, {Pong, "pong"},
		{Message, "message"}, {Upgrade, "upgrade"}, {Noop, "noop"}, {7, "PacketType(7)"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("PacketType(%d).String() = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestTextPacketRoundTrip(t *testing.T) {
	tests := []struct {
		wire string
		p    Packet
	}{
		{"4hello", text(Message, "hello")},
		{"2probe", text(Ping, "probe")},
		{"3probe", text(Pong, "probe")},
		{"6", text(Noop, "")},
		{"5", text(Upgrade, "")},
		{"1", text(Close, "")},
		{`0{"sid":"x"}`, text(Open, `{"sid":"x"}`)},
		{"42[\"chat\",\"€😀\"]", text(Message, "2[\"chat\",\"€😀\"]")},
	}
	for _, tt := range tests {
		got, err := DecodeTextPacket([]byte(tt.wire))
		if err != nil {
			t.Fatalf("DecodeTextPacket(%q): %v", tt.wire, err)
		}
		if !samePackets([]Packet{got}, []Packet{tt.p}) {
			t.Errorf("DecodeTextPacket(%q) = %s, want %s", tt.wire, formatPackets([]Packet{got}), formatPackets([]Packet{tt.p}))
		}
		if enc := AppendPacket([]byte("prefix"), tt.p); string(enc) != "prefix"+tt.wire {
			t.Errorf("AppendPacket(%s) = %q, want %q", formatPackets([]Packet{tt.p}), enc, "prefix"+tt.wire)
		}
	}
}

func TestDecodeTextPacketAliasesInput(t *testing.T) {
	frame := []byte("4hello")
	p, err := DecodeTextPacket(frame)
	if err != nil {
		t.Fatal(err)
	}
	frame[1] = 'j'
	if string(p.Data) != "jello" {
		t.Errorf("Data = %q, want it to alias the frame", p.Data)
	}
}

func TestDecodeTextPacketInvalid(t *testing.T) {
	for _, frame := range []string{"", "abc", "7", "9data", "/", "b4AQIDBA==", "\x00", "\xff"} {
		_, err := DecodeTextPacket([]byte(frame))
		wantErr(t, err, ErrInvalidPacket)
	}
}

func TestBinaryFrames(t *testing.T) {
	tests := []struct {
		name string
		v    Version
		wire []byte
		p    Packet
	}{
		{"v4 message", V4, []byte{1, 2, 3, 4}, binPacket(1, 2, 3, 4)},
		{"v4 empty", V4, []byte{}, binPacket()},
		{"v3 message", V3, []byte{4, 1, 2, 3, 4}, binPacket(1, 2, 3, 4)},
		{"v3 empty message", V3, []byte{4}, binPacket()},
		{"v3 ping", V3, []byte{2, 0xff}, Packet{Type: Ping, Data: []byte{0xff}, Binary: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBinaryFrame(tt.v, tt.wire)
			if err != nil {
				t.Fatal(err)
			}
			if !samePackets([]Packet{got}, []Packet{tt.p}) {
				t.Errorf("decoded %s, want %s", formatPackets([]Packet{got}), formatPackets([]Packet{tt.p}))
			}
			if enc := AppendBinaryFrame(tt.v, nil, tt.p); !bytes.Equal(enc, tt.wire) {
				t.Errorf("encoded % x, want % x", enc, tt.wire)
			}
		})
	}
}

func TestDecodeBinaryFrameInvalid(t *testing.T) {
	for _, frame := range [][]byte{{}, {7}, {0x34, 1}, {0xff}} {
		_, err := DecodeBinaryFrame(V3, frame)
		wantErr(t, err, ErrInvalidPacket)
	}
}
