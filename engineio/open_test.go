package engineio

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const nodeOpenJSON = `{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

var nodeOpen = OpenInfo{
	SID:          "lv_VI97HAXpY6yYWAAAC",
	Upgrades:     []string{"websocket"},
	PingInterval: 25000,
	PingTimeout:  20000,
	MaxPayload:   1000000,
}

func TestAppendOpen(t *testing.T) {
	tests := []struct {
		name string
		o    OpenInfo
		want string
	}{
		{"node example", nodeOpen, nodeOpenJSON},
		{"direct websocket, no maxPayload", OpenInfo{SID: "a", PingInterval: 1, PingTimeout: 2},
			`{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":2}`},
		{"two upgrades", OpenInfo{SID: "a", Upgrades: []string{"websocket", "webtransport"}},
			`{"sid":"a","upgrades":["websocket","webtransport"],"pingInterval":0,"pingTimeout":0}`},
		{"escaping like JSON.stringify", OpenInfo{SID: "<a\"b\\c\n>&\u2028"},
			"{\"sid\":\"<a\\\"b\\\\c\\n>&\u2028\",\"upgrades\":[],\"pingInterval\":0,\"pingTimeout\":0}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendOpen(nil, tt.o)
			if string(got) != tt.want {
				t.Fatalf("AppendOpen = %s, want %s", got, tt.want)
			}
			back, err := ParseOpen(got)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.o
			if want.Upgrades == nil {
				want.Upgrades = []string{}
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("ParseOpen(AppendOpen(o)) = %+v, want %+v", back, want)
			}
		})
	}
}

func TestParseOpen(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want OpenInfo
	}{
		{"node example", nodeOpenJSON, nodeOpen},
		{"whitespace", " \t\r\n{ \"sid\" : \"a\" , \"upgrades\" : [ \"websocket\" , \"x\" ] , \"pingTimeout\" : -5 }\n",
			OpenInfo{SID: "a", Upgrades: []string{"websocket", "x"}, PingTimeout: -5}},
		{"unknown keys of every kind", `{"x":{"a":[1,-2.5e+3,true,false,null,"s",{}]},"y":[],"sid":"a","z":0}`,
			OpenInfo{SID: "a"}},
		{"escaped key and value", `{"s\u0069d":"a\"\\\/\u00e9\ud83d\ude00"}`, OpenInfo{SID: "a\"\\/é😀"}},
		{"nulls leave zero values", `{"sid":"a","upgrades":null,"pingInterval":null,"maxPayload":null}`, OpenInfo{SID: "a"}},
		{"last duplicate wins", `{"sid":"a","sid":"b","pingInterval":1,"pingInterval":2}`, OpenInfo{SID: "b", PingInterval: 2}},
		{"keys are case-sensitive", `{"sid":"a","SID":"b","PingInterval":3}`, OpenInfo{SID: "a"}},
		{"extremes", `{"sid":"a","pingInterval":9223372036854775807,"pingTimeout":-9223372036854775808,"maxPayload":0}`,
			OpenInfo{SID: "a", PingInterval: 9223372036854775807, PingTimeout: -9223372036854775808}},
		{"empty upgrades", `{"sid":"a","upgrades":[]}`, OpenInfo{SID: "a", Upgrades: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOpen([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOpen = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// ParseOpen must agree with encoding/json on the inputs both accept whose
// keys are all lower-case exact matches.
func TestParseOpenMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		nodeOpenJSON,
		`{"sid":"a b","upgrades":["websocket","webtransport","polling"],"pingInterval":1,"pingTimeout":2,"extra":[{"k":"v"}]}`,
		`{"sid":"\u00e9\n\t"}`,
	} {
		var want OpenInfo
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		got, err := ParseOpen([]byte(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseOpen(%s) = %+v, %v; encoding/json gives %+v", in, got, err, want)
		}
	}
}

func TestParseOpenInvalid(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ``},
		{"not an object", `[]`},
		{"empty object", `{}`},
		{"empty sid", `{"sid":""}`},
		{"null sid", `{"sid":null}`},
		{"numeric sid", `{"sid":1}`},
		{"trailing comma", `{"sid":"a",}`},
		{"missing colon", `{"sid" "a"}`},
		{"missing comma", `{"sid":"a" "x":1}`},
		{"unterminated object", `{"sid":"a"`},
		{"trailing data", `{"sid":"a"} x`},
		{"two objects", `{"sid":"a"}{}`},
		{"fraction", `{"sid":"a","pingInterval":1.5}`},
		{"exponent", `{"sid":"a","pingInterval":1e3}`},
		{"leading zero", `{"sid":"a","pingInterval":01}`},
		{"overflow", `{"sid":"a","pingInterval":9223372036854775808}`},
		{"negative overflow", `{"sid":"a","pingInterval":-9223372036854775809}`},
		{"bare minus", `{"sid":"a","pingInterval":-}`},
		{"string interval", `{"sid":"a","pingInterval":"1"}`},
		{"upgrades not array", `{"sid":"a","upgrades":"websocket"}`},
		{"upgrades with number", `{"sid":"a","upgrades":[1]}`},
		{"upgrades trailing comma", `{"sid":"a","upgrades":["x",]}`},
		{"unterminated string", `{"sid":"a}`},
		{"bad escape", `{"sid":"\x"}`},
		{"short unicode escape", `{"sid":"\u12"}`},
		{"raw control char", "{\"sid\":\"a\nb\"}"},
		{"bad literal", `{"sid":"a","x":nul}`},
		{"bad number", `{"sid":"a","x":1.}`},
		{"bad exponent", `{"sid":"a","x":1e}`},
		{"single quotes", `{'sid':'a'}`},
		{"deep nesting", `{"sid":"a","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`},
		{"unbalanced", `{"sid":"a","x":[}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseOpen([]byte(tt.in))
			wantErr(t, err, ErrInvalidPacket)
		})
	}
}

func TestParseOpenAllocs(t *testing.T) {
	data := []byte(nodeOpenJSON)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseOpen(data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 { // the sid string and the upgrades slice
		t.Errorf("ParseOpen allocates %v times, want at most 2", allocs)
	}
}
