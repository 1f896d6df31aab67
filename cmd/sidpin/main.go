// Command sidpin is the sticky-session reverse proxy for Socket.IO / Engine.IO chat clusters.
//
//	sidpin -config FILE          run with a config file
//	sidpin -check -config FILE   validate the file, print a one-line summary, exit 0 or 1
//	sidpin -version              print the version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sidpin/sidpin/configs"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process exit, so it can be tested.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sidpin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the YAML config file")
	check := fs.Bool("check", false, "validate the config, print a summary and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "sidpin", version)
		return 0
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "sidpin: -config FILE is required (see configs/reference.yaml)")
		return 2
	}
	cfg, err := configs.Load(*configPath)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	if *check {
		fmt.Fprintln(stdout, cfg.Summary())
		return 0
	}
	// The proxy itself lands with issue 4; until then running validates and says so.
	fmt.Fprintln(stdout, cfg.Summary())
	fmt.Fprintln(stderr, "sidpin: the proxy is not built yet in this version; the config was only validated")
	return 1
}

func printConfigError(w io.Writer, err error) {
	var errs *configs.Errors
	if errors.As(err, &errs) {
		fmt.Fprintln(w, errs.Error())
		return
	}
	fmt.Fprintln(w, "sidpin:", err)
}
