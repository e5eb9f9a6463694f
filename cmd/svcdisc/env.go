package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/svcdisc/svcdisc/envgen"
)

func envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Usage:     "print the service environment variables a Pod in a namespace gets",
		UsageText: "svcdisc env --namespace NS [--manifests PATH | --kubeconfig FILE] [--no-service-links] [--services LIST] [-o text|json]",
		Description: "Prints what kubelet puts in every container of a Pod in NS: NAME=value a line,\n" +
			"grouped by Service in name order. --no-service-links is a Pod with\n" +
			"enableServiceLinks: false; --services is the svcdisc.io/services annotation.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Required: true, Usage: "the Pod's `NAMESPACE`"},
			&cli.BoolFlag{Name: "no-service-links", Usage: "as for a Pod with enableServiceLinks: false"},
			&cli.StringFlag{Name: "services", Usage: "as for a Pod annotated svcdisc.io/services: `LIST` of name or name.namespace"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "`FORMAT`: text or json"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up if Services are not read within this long"},
		}, sourceFlags...),
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return err },
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("env: unexpected argument %q", c.Args().First())
			}
			format := c.String("output")
			if format != "text" && format != "json" {
				return fmt.Errorf("env: -o %q is not text or json", format)
			}
			log, err := newLogger(c.App.ErrWriter, "text")
			if err != nil {
				return err
			}
			store := envgen.NewStore()
			src, err := serviceSource(c.String("manifests"), c.String("kubeconfig"), store, log)
			if err != nil {
				return fmt.Errorf("env: %w", err)
			}
			if !store.Synced() {
				ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
				defer cancel()
				go func() { _ = src.Run(ctx) }()
				for !store.Synced() {
					select {
					case <-ctx.Done():
						return errors.New("env: services not read within --timeout")
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
			ns := c.String("namespace")
			var set *envgen.Set
			if c.IsSet("services") {
				refs, bad := envgen.ParseRefs(c.String("services"), ns)
				if len(bad) > 0 {
					return fmt.Errorf("env: --services: %q is not name or name.namespace", strings.Join(bad, ", "))
				}
				var missing []envgen.Ref
				set, missing, _ = store.Select(refs)
				for _, r := range missing {
					log.Warn("service not found or without a cluster IP", "service", r.String())
				}
			} else {
				set = store.Env(ns, !c.Bool("no-service-links"))
			}
			vars := set.Vars()
			if format == "json" {
				if vars == nil {
					vars = []envgen.Var{}
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(vars)
			}
			var b strings.Builder
			for _, v := range vars {
				fmt.Fprintf(&b, "%s=%s\n", v.Name, v.Value)
			}
			_, err = fmt.Fprint(c.App.Writer, b.String())
			return err
		},
	}
}
