package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"

	"github.com/sidpin/sidpin/engineio"
)

// maxInflated bounds what is inflated of a compressed answer to look for a close packet.
const maxInflated = 4 * bufferLimit

// closeWatch looks for a close packet in a node's polling answer as it passes to the client. A plain
// answer is scanned as it streams, whatever its size, with a few dozen bytes of state. A compressed
// one is kept and inflated at its end only when it is at most bufferLimit long (Node compresses
// answers over 1 KiB; a close packet comes with few messages): a longer compressed answer ends its
// session by the pin's expiry instead.
type closeWatch struct {
	scan     engineio.CloseScanner
	encoding string
	kept     []byte
	over     bool
}

func newCloseWatch(eio int, jsonp bool, encoding string) *closeWatch {
	return &closeWatch{scan: engineio.NewCloseScanner(eio, jsonp, engineio.FromNode), encoding: encoding}
}

func (w *closeWatch) Write(p []byte) (int, error) {
	switch {
	case w.encoding == "":
		_, _ = w.scan.Write(p)
	case w.over:
	case len(w.kept)+len(p) > bufferLimit:
		w.over, w.kept = true, nil
	default:
		w.kept = append(w.kept, p...)
	}
	return len(p), nil
}

// closed reports whether the answer held a close packet.
func (w *closeWatch) closed() bool {
	if w.encoding != "" {
		if w.over {
			return false
		}
		_, _ = w.scan.Write(inflate(w.kept, w.encoding, maxInflated))
	}
	return w.scan.Closed()
}

// postCloses reports whether a client's POST body holds a close packet.
func postCloses(body []byte, eio int, jsonp bool) bool {
	s := engineio.NewCloseScanner(eio, jsonp, engineio.FromClient)
	_, _ = s.Write(body)
	return s.Closed()
}

// inflate decodes a gzip or deflate body into at most limit bytes; a cut or corrupt stream gives what
// it inflated before the cut.
func inflate(body []byte, encoding string, limit int64) []byte {
	var r io.Reader
	var err error
	switch encoding {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		if r, err = zlib.NewReader(bytes.NewReader(body)); err != nil {
			r, err = flate.NewReader(bytes.NewReader(body)), nil
		}
	default:
		return nil
	}
	if err != nil {
		return nil
	}
	var out bytes.Buffer
	_, _ = io.Copy(&out, io.LimitReader(r, limit))
	return out.Bytes()
}
