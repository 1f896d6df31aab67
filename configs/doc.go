// Package configs owns sidpin's configuration: the Go types of the file, their defaults, loading
// from YAML with every problem reported at once (file, line, field path, reason), and the example
// files, which are embedded so the demo runs from one binary.
//
// It must not start anything or touch the network: other packages turn a *Config into running parts.
package configs
