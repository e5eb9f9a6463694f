// Command svcdisc is Kubernetes service discovery in one binary: a cluster
// DNS server answering from watched Services and EndpointSlices, and the
// admission webhook that gives Pods kubelet's service environment variables.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code: 0 on success, 1
// with a one-line error on bad flags, configuration or startup failure.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if err := app.Run(args); err != nil {
		fmt.Fprintf(stderr, "svcdisc: %v\n", err)
		return 1
	}
	return 0
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "svcdisc",
		Usage:     "Kubernetes service discovery: cluster DNS and service environment variables",
		Version:   versionString(),
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once, by run, on one line.
		ExitErrHandler:       func(*cli.Context, error) {},
		HideVersion:          false,
		EnableBashCompletion: false,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return err
		},
		Commands: []*cli.Command{
			serveCommand(),
			envCommand(),
			webhookCommand(),
			certsCommand(),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprintf(c.App.Writer, "svcdisc %s\n", versionString())
					return err
				},
			},
		},
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
