package engineio

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf16"
)

// Seeds shared by the payload fuzzers; the testdata corpus adds a few more.
var (
	seedsV4 = []string{
		"4hello\x1ebAQIDBA==", "4hello\x1e2\x1e4world", "6", "b", "0" + nodeOpenJSON + "\x1e40",
		"", "\x1e", "bAQ=", "4€😀",
	}
	seedsV3String = []string{
		"6:4hello2:4€", "3:4😀", "10:b4AQIDBA==", "0:", "1:11:61:3", "118:0" + nodeOpenJSON + "2:40",
		"", "2:4😀", "99999999999:4", "4:b4A=",
	}
	seedsV3Binary = []string{
		"\x00\x06\xff4hello\x01\x05\xff\x04\x01\x02\x03\x04", "\x00\x04\xff4€", "\x01\x01\xff\x04",
		"", "\x02", "\x00\x0a\xff", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xff6",
	}
)

func addSeeds(f *testing.F, seeds []string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

// fuzzRoundTrip checks decode → encode → decode yields the same packets for
// every body that decodes, and returns the packets.
func fuzzRoundTrip(t *testing.T, body []byte, decode decodeFunc, encode func([]byte, []Packet) []byte) ([]Packet, bool) {
	pkts, err := collect(decode, body)
	if err != nil {
		return nil, false
	}
	again := encode(nil, pkts)
	back, err := collect(decode, again)
	if len(pkts) == 0 && len(again) == 0 {
		return pkts, true // an empty batch has no v4 or XHR2 encoding
	}
	if err != nil {
		t.Fatalf("re-encoded %q fails to decode: %v (from %q)", again, err, body)
	}
	if !samePackets(pkts, back) {
		t.Fatalf("round trip changed packets:\n in  %q -> %s\n out %q -> %s", body, formatPackets(pkts), again, formatPackets(back))
	}
	return pkts, true
}

func FuzzDecodePayloadV4(f *testing.F) {
	addSeeds(f, seedsV4)
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, ok := fuzzRoundTrip(t, body, DecodePayloadV4, AppendPayloadV4)
		if !ok {
			return
		}
		textOnly := true
		for _, p := range pkts {
			textOnly = textOnly && !p.Binary
		}
		if textOnly && !bytes.Equal(AppendPayloadV4(nil, pkts), body) {
			t.Fatalf("text payload %q does not re-encode byte for byte", body)
		}
	})
}

func FuzzDecodePayloadV3String(f *testing.F) {
	addSeeds(f, seedsV3String)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoundTrip(t, body, DecodePayloadV3String, AppendPayloadV3String)
	})
}

func FuzzDecodePayloadV3Binary(f *testing.F) {
	addSeeds(f, seedsV3Binary)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoundTrip(t, body, DecodePayloadV3Binary, AppendPayloadV3Binary)
	})
}

func FuzzDecodeTextPacket(f *testing.F) {
	addSeeds(f, []string{"4hello", "2probe", "6", "", "7", "b4AQ==", "0" + nodeOpenJSON})
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := DecodeTextPacket(frame)
		if err != nil {
			return
		}
		if got := AppendPacket(nil, p); !bytes.Equal(got, frame) {
			t.Fatalf("AppendPacket(DecodeTextPacket(%q)) = %q", frame, got)
		}
	})
}

func FuzzSniffHandshake(f *testing.F) {
	open := "0" + nodeOpenJSON
	addSeeds(f, []string{
		open, open + "\x1e40", "118:" + open + "2:40", "\x00\x01\x01\x08\xff" + open,
		string(AppendJSONP(nil, []byte("1"), []byte("118:"+open))), "40", "1:1", "", "\x1f\x8b",
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := SniffHandshake(body)
		want, fullOK := openFromFullDecode(body)
		if err != nil {
			if fullOK {
				t.Fatalf("SniffHandshake(%q) failed (%v) but the full decode finds %+v", body, err, want)
			}
			return
		}
		if info.SID == "" {
			t.Fatalf("SniffHandshake(%q) succeeded without a sid", body)
		}
		if fullOK && !reflect.DeepEqual(info, want) {
			t.Fatalf("SniffHandshake(%q) = %+v, full decode gives %+v", body, info, want)
		}
		// What was sniffed must survive being re-sent as a plain v4 handshake.
		again, err := SniffHandshake(AppendOpen([]byte("0"), info))
		if err != nil {
			t.Fatalf("re-encoded handshake of %q fails: %v", body, err)
		}
		if info.Upgrades == nil {
			info.Upgrades = []string{}
		}
		if !reflect.DeepEqual(info, again) {
			t.Fatalf("handshake changed on re-encoding: %+v -> %+v", info, again)
		}
	})
}

// openFromFullDecode reads the handshake of a plain (not JSONP) body with
// the full payload decoders, as an independent check on SniffHandshake.
func openFromFullDecode(body []byte) (OpenInfo, bool) {
	var decode decodeFunc
	switch {
	case len(body) == 0 || hasJSONPPrefix(body):
		return OpenInfo{}, false
	case body[0] <= 1:
		decode = DecodePayloadV3Binary
	case startsV3String(body):
		decode = DecodePayloadV3String
	default:
		decode = DecodePayloadV4
	}
	pkts, err := collect(decode, body)
	if err != nil || len(pkts) == 0 || pkts[0].Type != Open {
		return OpenInfo{}, false
	}
	info, err := ParseOpen(pkts[0].Data)
	return info, err == nil
}

func FuzzUnwrapJSONP(f *testing.F) {
	addSeeds(f, []string{
		`___eio[1]("6:4hello");`, `___eio[0]("\"\\\n\u2028\ud83d\ude00");`, `___eio[]("")`,
		`___eio[1]("\ud800");`, "___eio[1](\"\xff\");", `___eio[1]("`, "",
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		// Any byte string survives wrapping and unwrapping unchanged.
		wrapped := AppendJSONP(nil, []byte("7"), body)
		if got, err := UnwrapJSONP(wrapped); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("UnwrapJSONP(AppendJSONP(%q)) = %q, %v", body, got, err)
		}
		payload, err := UnwrapJSONP(body)
		if err != nil {
			return
		}
		if got, err := UnwrapJSONP(AppendJSONP(nil, []byte("1"), payload)); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("payload %q of %q does not survive re-wrapping: %q, %v", payload, body, got, err)
		}
	})
}

func FuzzParseOpen(f *testing.F) {
	addSeeds(f, []string{nodeOpenJSON, `{"sid":"a","x":[{"y":-1.5e3}]}`, `{"s\u0069d":"\ud83d\ude00"}`, `{`, `{"sid":""}`})
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOpen(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("ParseOpen accepted invalid JSON %q", data)
		}
		back, err := ParseOpen(AppendOpen(nil, o))
		if err != nil {
			t.Fatalf("AppendOpen(%+v) does not parse: %v", o, err)
		}
		if o.Upgrades == nil {
			o.Upgrades = []string{}
		}
		if !reflect.DeepEqual(o, back) {
			t.Fatalf("open info changed on re-encoding: %+v -> %+v", o, back)
		}
	})
}

func FuzzDecodeJSONPPost(f *testing.F) {
	addSeeds(f, []string{"d=6%3A4hello", "d=4a%5Cnb", "x=1&d=a+b", "d=%", ""})
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeJSONPPost(body)
		if err == nil && len(got) > len(body) {
			t.Fatalf("DecodeJSONPPost(%q) grew to %q", body, got)
		}
	})
}

func FuzzUTF16Len(f *testing.F) {
	addSeeds(f, []string{"hello", "€😀", "\xff\xe2\x82", "\xed\xa0\x80", "abcdefgh€ijklmnop😀"})
	f.Fuzz(func(t *testing.T, s []byte) {
		n := utf16Len(s)
		if want := len(utf16.Encode([]rune(string(s)))); n != want {
			t.Fatalf("utf16Len(%q) = %d, want %d", s, n, want)
		}
		if end, ok := utf16Prefix(s, n); !ok || end != len(s) {
			t.Fatalf("utf16Prefix(%q, %d) = %d, %v", s, n, end, ok)
		}
	})
}
