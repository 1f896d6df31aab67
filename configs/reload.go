package configs

import (
	"reflect"
	"strings"
)

// Reload classes of a config field, in its `reload` tag.
const (
	ReloadLive    = "live"    // a reload applies the new value
	ReloadRestart = "restart" // read at start only: a reload reports the change and keeps the old value
)

// RestartFieldsChanged lists, by YAML path, the restart-only fields whose value differs between old
// and cfg: what a reload cannot apply.
func RestartFieldsChanged(old, cfg *Config) []string {
	var out []string
	walkReload(reflect.ValueOf(*old), reflect.ValueOf(*cfg), "", func(path, class string, a, b reflect.Value) {
		if class == ReloadRestart && !reflect.DeepEqual(a.Interface(), b.Interface()) {
			out = append(out, path)
		}
	})
	return out
}

// KeepRestartFields sets every restart-only field of cfg to its value in old: the config a reload puts
// in force says what is running, not what will run after a restart.
func KeepRestartFields(old, cfg *Config) {
	walkReload(reflect.ValueOf(old).Elem(), reflect.ValueOf(cfg).Elem(), "", func(_, class string, a, b reflect.Value) {
		if class == ReloadRestart {
			b.Set(a)
		}
	})
}

// walkReload calls visit for every classed field of two values of one struct type, recursing into
// struct fields that carry no class of their own. Fields not read from YAML are skipped.
func walkReload(a, b reflect.Value, prefix string, visit func(path, class string, a, b reflect.Value)) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if key == "-" || key == "" {
			continue
		}
		path := prefix + key
		if class := f.Tag.Get("reload"); class != "" {
			visit(path, class, a.Field(i), b.Field(i))
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			walkReload(a.Field(i), b.Field(i), path+".", visit)
			continue
		}
		visit(path, "", a.Field(i), b.Field(i))
	}
}
