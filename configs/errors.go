package configs

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a config file, tied to a field path such as pools[1].nodes[0].url.
type FieldError struct {
	Path string // field path; "" for problems with the file as a whole
	Line int    // 1-based line in the file; 0 when unknown
	Msg  string
}

// Errors is every problem found in one config file. Load reports all of them at once.
type Errors struct {
	File string
	List []FieldError
}

func (e *Errors) add(path string, line int, format string, args ...any) {
	e.List = append(e.List, FieldError{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Error prints one problem per line: "file:line: path: message".
func (e *Errors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s) in the config:", e.name(), len(e.List))
	for _, fe := range e.List {
		b.WriteString("\n  ")
		b.WriteString(e.name())
		if fe.Line > 0 {
			fmt.Fprintf(&b, ":%d", fe.Line)
		}
		b.WriteString(": ")
		if fe.Path != "" {
			b.WriteString(fe.Path)
			b.WriteString(": ")
		}
		b.WriteString(fe.Msg)
	}
	return b.String()
}

func (e *Errors) name() string {
	if e.File == "" {
		return "config"
	}
	return e.File
}

// err returns e as an error in file order, or nil when nothing was found.
func (e *Errors) err() error {
	if len(e.List) == 0 {
		return nil
	}
	sort.SliceStable(e.List, func(i, j int) bool { return e.List[i].Line < e.List[j].Line })
	return e
}
