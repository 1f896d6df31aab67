package engineio

import (
	"net/url"
	"strings"
	"testing"
)

func TestAppendJSONP(t *testing.T) {
	tests := []struct {
		name, index, payload, want string
	}{
		{"plain", "0", "6:4hello", `___eio[0]("6:4hello");`},
		{"quotes", "1", `12:42["a","b"]`, `___eio[1]("12:42[\"a\",\"b\"]");`},
		{"backslash", "2", `3:4\n`, `___eio[2]("3:4\\n");`},
		{"newline and tab", "3", "4:4a\nb\t", `___eio[3]("4:4a\nb\t");`},
		{"control chars", "4", "3:4\x01\x1f\x7f", `___eio[4]("3:4\u0001\u001f` + "\x7f" + `");`},
		{"line separators", "5", "3:4\u2028\u2029", `___eio[5]("3:4\u2028\u2029");`},
		{"other non-ASCII stays raw", "6", "3:4€😀", `___eio[6]("3:4€😀");`},
		{"index keeps digits only", "1<script>2", "1:6", `___eio[12]("1:6");`},
		{"empty index", "", "1:6", `___eio[]("1:6");`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendJSONP(nil, []byte(tt.index), []byte(tt.payload))
			if string(got) != tt.want {
				t.Fatalf("AppendJSONP = %s, want %s", got, tt.want)
			}
			back, err := UnwrapJSONP(got)
			if err != nil || string(back) != tt.payload {
				t.Errorf("UnwrapJSONP = %q, %v; want %q", back, err, tt.payload)
			}
		})
	}
}

func TestUnwrapJSONP(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"no semicolon", `___eio[1]("1:6")`, "1:6"},
		{"trailing newline", "___eio[1](\"1:6\");\n", "1:6"},
		{"solidus and short escapes", `___eio[1]("\/\b\f\r")`, "/\b\f\r"},
		{"unicode escapes", `___eio[1]("\u20ac\ud83d\ude00\u0041")`, "€😀A"},
		{"lone surrogate", `___eio[1]("\ud83dx\udc00")`, "\uFFFDx\uFFFD"},
		{"high surrogate then non-low", `___eio[1]("\ud83d\u0041")`, "\uFFFDA"},
		{"upper-case hex", `___eio[1]("\u00E9")`, "é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnwrapJSONP([]byte(tt.body))
			if err != nil || string(got) != tt.want {
				t.Errorf("UnwrapJSONP(%s) = %q, %v; want %q", tt.body, got, err, tt.want)
			}
		})
	}
}

func TestUnwrapJSONPInvalid(t *testing.T) {
	for _, body := range []string{
		``,
		`6:4hello`,
		`___eio`,
		`___eio[1]`,
		`___eio[1](`,
		`___eio[a]("1:6");`,
		`___eio[1]('1:6');`,
		`___eio[1]("1:6";`,
		`___eio[1]("1:6`,
		`___eio[1]("1:6\");`,
		`___eio[1]("\x");`,
		`___eio[1]("\u12");`,
		`___eio[1]("\u12g4");`,
		"___eio[1](\"a\nb\");",
		`___eio[1]("1:6");x`,
		`___eio[1]("1:6");;`,
	} {
		_, err := UnwrapJSONP([]byte(body))
		wantErr(t, err, ErrInvalidPayload)
	}
}

// clientJSONPPost encodes a payload the way engine.io-client's JSONP
// transport posts it: literal `\n` doubled, newlines written as `\n`, then
// form-encoded into the d field.
func clientJSONPPost(payload string) string {
	payload = strings.ReplaceAll(payload, `\n`, "\\\n")
	payload = strings.ReplaceAll(payload, "\n", `\n`)
	return "d=" + url.QueryEscape(payload)
}

func TestDecodeJSONPPost(t *testing.T) {
	for _, payload := range []string{
		"6:4hello",
		"5:4a\nb",
		`6:4a\nb`,
		`7:4a\\nb`,
		"10:4a b+c&d=",
		"3:4€😀",
		"",
	} {
		body := clientJSONPPost(payload)
		got, err := DecodeJSONPPost([]byte(body))
		if err != nil || string(got) != payload {
			t.Errorf("DecodeJSONPPost(%q) = %q, %v; want %q", body, got, err, payload)
		}
	}
}

// A backslash right before a newline cannot survive the client's escaping:
// it posts `\\n`, which Node (and we) read back as a literal `\n`.
func TestDecodeJSONPPostBackslashNewlineIsLossy(t *testing.T) {
	body := clientJSONPPost("4a\\\nb")
	got, err := DecodeJSONPPost([]byte(body))
	if err != nil || string(got) != `4a\nb` {
		t.Errorf("DecodeJSONPPost(%q) = %q, %v; want %q", body, got, err, `4a\nb`)
	}
}

func TestDecodeJSONPPostForm(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{"d=1%3A6", "1:6"},
		{"x=1&d=1:6&d=ignored", "1:6"},
		{"%64=1:6", "1:6"},
		{"d=a+b", "a b"},
		{"d", ""},
		{"d=%e2%82%AC", "€"},
	}
	for _, tt := range tests {
		got, err := DecodeJSONPPost([]byte(tt.body))
		if err != nil || string(got) != tt.want {
			t.Errorf("DecodeJSONPPost(%q) = %q, %v; want %q", tt.body, got, err, tt.want)
		}
	}
}

func TestDecodeJSONPPostInvalid(t *testing.T) {
	for _, body := range []string{"", "x=1", "dd=1", "d=%", "d=%4", "d=%zz", "D=1:6"} {
		_, err := DecodeJSONPPost([]byte(body))
		wantErr(t, err, ErrInvalidPayload)
	}
}
