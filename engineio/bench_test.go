package engineio

import "testing"

// benchBatch is a typical server flush: a few Socket.IO events and a ping.
var benchBatch = []Packet{
	text(Message, `2["chat",{"user":"alice","text":"hello everyone, how is it going?"}]`),
	text(Message, `2["chat",{"user":"bob","text":"fine, thanks — and you? 😀"}]`),
	text(Message, `3["ok"]`),
	text(Ping, ""),
}

var benchBinaryBatch = append(benchBatch[:len(benchBatch):len(benchBatch)],
	text(Message, `51-["file",{"_placeholder":true,"num":0}]`),
	binPacket(make([]byte, 256)...),
)

func discard(Packet) error { return nil }

func benchAppend(b *testing.B, encode func([]byte, []Packet) []byte, pkts []Packet) {
	dst := encode(nil, pkts)
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst = encode(dst[:0], pkts)
	}
}

func benchDecode(b *testing.B, decode decodeFunc, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(body, discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPayloadV4(b *testing.B) {
	b.Run("text", func(b *testing.B) { benchAppend(b, AppendPayloadV4, benchBatch) })
	b.Run("binary", func(b *testing.B) { benchAppend(b, AppendPayloadV4, benchBinaryBatch) })
}

func BenchmarkDecodePayloadV4(b *testing.B) {
	b.Run("text", func(b *testing.B) { benchDecode(b, DecodePayloadV4, AppendPayloadV4(nil, benchBatch)) })
	b.Run("binary", func(b *testing.B) { benchDecode(b, DecodePayloadV4, AppendPayloadV4(nil, benchBinaryBatch)) })
}

func BenchmarkAppendPayloadV3String(b *testing.B) {
	b.Run("text", func(b *testing.B) { benchAppend(b, AppendPayloadV3String, benchBatch) })
	b.Run("binary", func(b *testing.B) { benchAppend(b, AppendPayloadV3String, benchBinaryBatch) })
}

func BenchmarkDecodePayloadV3String(b *testing.B) {
	b.Run("text", func(b *testing.B) { benchDecode(b, DecodePayloadV3String, AppendPayloadV3String(nil, benchBatch)) })
	b.Run("binary", func(b *testing.B) {
		benchDecode(b, DecodePayloadV3String, AppendPayloadV3String(nil, benchBinaryBatch))
	})
}

func BenchmarkAppendPayloadV3Binary(b *testing.B) {
	benchAppend(b, AppendPayloadV3Binary, benchBinaryBatch)
}

func BenchmarkDecodePayloadV3Binary(b *testing.B) {
	benchDecode(b, DecodePayloadV3Binary, AppendPayloadV3Binary(nil, benchBinaryBatch))
}

func BenchmarkAppendJSONP(b *testing.B) {
	payload := AppendPayloadV3String(nil, benchBatch)
	dst := AppendJSONP(nil, []byte("3"), payload)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendJSONP(dst[:0], []byte("3"), payload)
	}
}

func BenchmarkAppendOpen(b *testing.B) {
	dst := AppendOpen(nil, nodeOpen)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendOpen(dst[:0], nodeOpen)
	}
}

func BenchmarkSniffHandshake(b *testing.B) {
	open := "0" + nodeOpenJSON
	bodies := []struct {
		name string
		body []byte
	}{
		{"v4", []byte(open + "\x1e40")},
		{"v3", []byte("118:" + open + "2:40")},
		{"v3-xhr2", append([]byte{0x00, 1, 1, 8, 0xFF}, open...)},
		{"v3-jsonp", AppendJSONP(nil, []byte("1"), []byte("118:"+open+"2:40"))},
	}
	for _, bb := range bodies {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SniffHandshake(bb.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
