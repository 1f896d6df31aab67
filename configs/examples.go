package configs

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed *.yaml
var examples embed.FS

// Example returns the example config of that name ("demo", "redis", "reference"), parsed and validated.
// It lets the demo run from one binary without a file on disk.
func Example(name string) (*Config, error) {
	data, err := fs.ReadFile(examples, name+".yaml")
	if err != nil {
		return nil, fmt.Errorf("no example config named %q: %w", name, err)
	}
	return Parse("configs/"+name+".yaml", data)
}

// ExampleNames lists the embedded example configs.
func ExampleNames() []string {
	entries, _ := fs.ReadDir(examples, ".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name()[:len(e.Name())-len(".yaml")])
	}
	return names
}
