package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates the config file at path.
// A problem with the content returns *Errors listing every problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates config data; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	cfg := Default()
	cfg.File = name
	errs := &Errors{File: name}
	root, err := parseYAML(data)
	if err != nil {
		errs.add("", yamlErrLine(err), "%v", err)
		return nil, errs
	}
	if root == nil {
		errs.add("", 0, "the file is empty; at least one pool is required")
		return nil, errs
	}
	dec := &decoder{errs: errs, lines: map[string]int{}}
	dec.decode(root, "", reflect.ValueOf(&cfg).Elem())
	validate(&cfg, &validator{errs: errs, lines: dec.lines})
	if err := errs.err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// parseYAML returns the top node of the single document in data, or nil if there is none.
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("the file holds more than one YAML document; sidpin reads exactly one")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// yamlErrLine pulls the line number out of a yaml.v3 syntax error when there is one; the message keeps it too.
func yamlErrLine(err error) int {
	var line int
	if _, scanErr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); scanErr == nil {
		return line
	}
	return 0
}

// Validate checks a config built in code (the command line's quick start) with the file's rules.
func Validate(c *Config) error {
	errs := &Errors{File: c.File}
	validate(c, &validator{errs: errs, lines: map[string]int{}})
	return errs.err()
}

// QuickStartFile is the File of a quick-start config: it came from the command line.
const QuickStartFile = "command line"

// QuickStart builds the config of `sidpin -listen ADDR -to URL,URL`: one pool at enginePath with
// the memory store and every default.
func QuickStart(listen string, nodeURLs []string, enginePath string) (*Config, error) {
	cfg := Default()
	cfg.File = QuickStartFile
	cfg.Listen = listen
	pool := Pool{Name: "default"}
	pool.setDefaults()
	if enginePath != "" {
		pool.EngineIOPath = enginePath
	}
	for i, u := range nodeURLs {
		n := Node{Name: fmt.Sprintf("node%d", i+1), URL: u}
		n.setDefaults()
		pool.Nodes = append(pool.Nodes, n)
	}
	cfg.Pools = []Pool{pool}
	if err := Validate(&cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}
