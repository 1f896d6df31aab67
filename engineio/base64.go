package engineio

import (
	"bytes"
	"encoding/base64"
)

// b64 is the alphabet both protocol versions use: standard, padded.
var b64 = base64.StdEncoding

// appendBase64Decode appends the decoded form of src to dst. The standard
// decoder silently skips CR and LF; we refuse them so that only the exact
// encoding peers produce is accepted.
func appendBase64Decode(dst, src []byte) ([]byte, error) {
	if bytes.IndexByte(src, '\n') >= 0 || bytes.IndexByte(src, '\r') >= 0 {
		return dst, packetError("line break in base64 data")
	}
	out, err := b64.AppendDecode(dst, src)
	if err != nil {
		return dst, packetError("bad base64: %v", err)
	}
	return out, nil
}
