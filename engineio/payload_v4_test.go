package engineio

import (
	"errors"
	"testing"
)

func TestPayloadV4RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		wire string
		pkts []Packet
	}{
		{"text and binary", "4hello\x1ebAQIDBA==", []Packet{text(Message, "hello"), binPacket(1, 2, 3, 4)}},
		{"three texts", "4hello\x1e2\x1e4world", []Packet{text(Message, "hello"), text(Ping, ""), text(Message, "world")}},
		{"single noop", "6", []Packet{text(Noop, "")}},
		{"close", "1", []Packet{text(Close, "")}},
		{"empty binary", "b", []Packet{binPacket()}},
		{"open then message", `0{"sid":"s"}` + "\x1e40", []Packet{text(Open, `{"sid":"s"}`), text(Message, "0")}},
		{"utf-8", "4€😀", []Packet{text(Message, "€😀")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendPayloadV4(nil, tt.pkts); string(got) != tt.wire {
				t.Errorf("AppendPayloadV4 = %q, want %q", got, tt.wire)
			}
			got, err := collect(DecodePayloadV4, []byte(tt.wire))
			if err != nil {
				t.Fatalf("DecodePayloadV4(%q): %v", tt.wire, err)
			}
			if !samePackets(got, tt.pkts) {
				t.Errorf("DecodePayloadV4(%q) = %s, want %s", tt.wire, formatPackets(got), formatPackets(tt.pkts))
			}
		})
	}
}

func TestDecodePayloadV4Invalid(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"empty", ""},
		{"only separator", "\x1e"},
		{"trailing separator", "4hello\x1e"},
		{"leading separator", "\x1e4hello"},
		{"empty record in the middle", "4a\x1e\x1e4b"},
		{"unknown type letter", "x"},
		{"unknown type digit", "7"},
		{"bad base64 chars", "b!!!!"},
		{"bad base64 length", "bAQ="},
		{"base64 with newline", "bAQID\nBA=="},
		{"base64 with CR", "bAQID\rBA=="},
		{"missing padding", "bAQIDBA"},
		{"bad second record", "4ok\x1e9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect(DecodePayloadV4, []byte(tt.body))
			wantErr(t, err, ErrInvalidPayload)
		})
	}
}

func TestDecodePayloadV4StopsOnCallbackError(t *testing.T) {
	calls := 0
	err := DecodePayloadV4([]byte("4a\x1e4b\x1e4c"), func(Packet) error {
		calls++
		if calls == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || errors.Is(err, ErrInvalidPayload) || calls != 2 {
		t.Errorf("err = %v after %d calls, want errStop after 2", err, calls)
	}
}

func TestDecodePayloadV4WrapsPacketError(t *testing.T) {
	err := DecodePayloadV4([]byte("9"), func(Packet) error { return nil })
	wantErr(t, err, ErrInvalidPayload)
	wantErr(t, err, ErrInvalidPacket)
}
