package engineio

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"testing"
)

func TestSniffHandshake(t *testing.T) {
	open := "0" + nodeOpenJSON
	v3 := "118:" + open
	if len(open) != 118 {
		t.Fatalf("open packet is %d bytes, the notes say 118", len(open))
	}
	xhr2 := append([]byte{0x00, 1, 1, 8, 0xFF}, open...)
	xhr2 = AppendPayloadV3Binary(xhr2, []Packet{binPacket(1, 2)})
	b64Open := "b0" + base64.StdEncoding.EncodeToString([]byte(nodeOpenJSON))
	tests := []struct {
		name string
		body string
	}{
		{"v4", open},
		{"v4 with initialPacket", open + "\x1e40"},
		{"v4 with several trailing packets", open + "\x1e40\x1ebAQID\x1e2"},
		{"v3", v3},
		{"v3 with socket.io connect", v3 + "2:40"},
		{"v3 with trailing base64 packet", v3 + "10:b4AQIDBA=="},
		{"v3 after an empty record", "0:" + v3},
		{"v3 base64 open record", strconv.Itoa(len(b64Open)) + ":" + b64Open},
		{"v3 xhr2 binary", string(xhr2)},
		{"v3 xhr2 with leading-zero length", "\x00\x00\x01\x01\x08\xff" + open},
		{"jsonp v3", string(AppendJSONP(nil, []byte("0"), []byte(v3+"2:40")))},
		{"jsonp v4", string(AppendJSONP(nil, []byte("12"), []byte(open)))},
		{"jsonp unescaped content", `___eio[3]("` + strconv.Itoa(len(b64Open)) + ":" + b64Open + `");`},
		{"v4 whitespace inside JSON", "0{ \"sid\": \"lv_VI97HAXpY6yYWAAAC\", \"upgrades\": [\"websocket\"], " +
			"\"pingInterval\": 25000, \"pingTimeout\": 20000, \"maxPayload\": 1000000 }"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SniffHandshake([]byte(tt.body))
			if err != nil {
				t.Fatalf("SniffHandshake(%q): %v", tt.body, err)
			}
			if !reflect.DeepEqual(got, nodeOpen) {
				t.Errorf("SniffHandshake(%q) = %+v, want %+v", tt.body, got, nodeOpen)
			}
		})
	}
}

func TestSniffHandshakeDirectWebSocketFrame(t *testing.T) {
	frame := `0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
	got, err := SniffHandshake([]byte(frame))
	if err != nil || got.SID != "abc" || len(got.Upgrades) != 0 {
		t.Errorf("SniffHandshake = %+v, %v", got, err)
	}
}

func TestSniffHandshakeInvalid(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		target error
	}{
		{"empty", "", ErrInvalidPayload},
		{"garbage", "hello world", ErrInvalidPayload},
		{"html error page", "<html>502</html>", ErrInvalidPayload},
		{"json error body", `{"code":1,"message":"Session ID unknown"}`, ErrInvalidPayload},
		{"gzip", "\x1f\x8b\x08\x00\x00\x00", ErrInvalidPayload},
		{"v4 message first", "40\x1e" + "0" + nodeOpenJSON, ErrNotOpen},
		{"v4 noop", "6", ErrNotOpen},
		{"v4 binary first", "bAQID", ErrNotOpen},
		{"v3 message first", "2:40118:0" + nodeOpenJSON, ErrNotOpen},
		{"v3 close", "1:1", ErrNotOpen},
		{"v3 empty payload", "0:", ErrInvalidPayload},
		{"v3 xhr2 binary message first", "\x01\x02\xff\x04\x01", ErrNotOpen},
		{"v3 length past end", "200:0" + nodeOpenJSON, ErrInvalidPayload},
		{"v3 length too short", "20:0" + nodeOpenJSON, ErrInvalidPacket},
		{"xhr2 truncated", "\x00\x01\x01\x08\xff0{", ErrInvalidPayload},
		{"open without JSON", "0", ErrInvalidPacket},
		{"open without sid", `0{"upgrades":[]}`, ErrInvalidPacket},
		{"open with bad JSON", `0{"sid":"a"`, ErrInvalidPacket},
		{"jsonp broken", `___eio[1]("118:0{`, ErrInvalidPayload},
		{"jsonp non-open", `___eio[1]("1:6");`, ErrNotOpen},
		{"jsonp bad escape", `___eio[1]("\q");`, ErrInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SniffHandshake([]byte(tt.body))
			wantErr(t, err, tt.target)
		})
	}
}

func TestSniffHandshakeAllocs(t *testing.T) {
	bodies := map[string][]byte{
		"v4":    []byte("0" + nodeOpenJSON + "\x1e40"),
		"v3":    []byte("118:0" + nodeOpenJSON + "2:40"),
		"jsonp": AppendJSONP(nil, []byte("1"), []byte("118:0"+nodeOpenJSON)),
	}
	for name, body := range bodies {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := SniffHandshake(body); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 { // the sid string and the upgrades slice
			t.Errorf("%s: SniffHandshake allocates %v times, want at most 2", name, allocs)
		}
	}
}
