package configs

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a parsed YAML tree onto a Go value, recording every problem with its field path
// instead of stopping at the first one. yaml.v3's own strict decoding reports line numbers but not
// paths such as pools[1].nodes[0].url, and it cannot keep defaults for list elements.
type decoder struct {
	errs  *Errors
	lines map[string]int // field path -> line, so validation errors can point at the file too
}

var durationType = reflect.TypeOf(Duration(0))

func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		return // an explicit null keeps the default
	}
	switch {
	case v.Type() == durationType:
		d.decodeDuration(n, path, v)
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, path, v)
	case v.Kind() == reflect.Slice:
		d.decodeSlice(n, path, v)
	default:
		d.decodeScalar(n, path, v)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(path, n.Line, "must be a mapping of keys to values, got %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if line, dup := seen[key.Value]; dup {
			d.errs.add(join(path, key.Value), key.Line, "is already defined at line %d", line)
			continue
		}
		seen[key.Value] = key.Line
		idx, ok := fields[key.Value]
		if !ok {
			d.errs.add(join(path, key.Value), key.Line, "unknown field (known: %s)", knownFields(v.Type()))
			continue
		}
		d.lines[join(path, key.Value)] = key.Line
		d.decode(val, join(path, key.Value), v.Field(idx))
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.errs.add(path, n.Line, "must be a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		elem := s.Index(i)
		if def, ok := elem.Addr().Interface().(defaulter); ok {
			def.setDefaults()
		}
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		d.lines[itemPath] = item.Line
		d.decode(item, itemPath, elem)
	}
	v.Set(s)
}

func (d *decoder) decodeScalar(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.errs.add(path, n.Line, "must be a single value, got %s", describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			d.errs.add(path, n.Line, "%q is not a boolean (use true or false)", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || n.Tag != "!!int" {
			d.errs.add(path, n.Line, "%q is not a whole number", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errs.add(path, n.Line, "%q is not a number", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if a new field type is added to Config without teaching the decoder.
		d.errs.add(path, n.Line, "sidpin cannot decode values of Go type %s", v.Type())
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.errs.add(path, n.Line, "must be a duration such as 500ms or 1m30s, got %s", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errs.add(path, n.Line, "%q is not a duration (write it like 500ms, 2s or 1m30s)", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// yamlFields maps YAML keys to struct field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if key := yamlKey(t.Field(i)); key != "" {
			m[key] = i
		}
	}
	return m
}

func yamlKey(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	if tag == "" || tag == "-" {
		return ""
	}
	return strings.Split(tag, ",")[0]
}

func knownFields(t reflect.Type) string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if key := yamlKey(t.Field(i)); key != "" {
			keys = append(keys, key)
		}
	}
	return strings.Join(keys, ", ")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
