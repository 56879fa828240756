// composecheck validates Compose files the way `docker compose config` does, without a Docker
// engine: compose-go (the library Docker Compose itself uses) loads each file, checks it against
// the Compose Specification's JSON schema, interpolates variables, and checks the model's
// semantics (unknown services in depends_on, secrets and volumes that are not declared, ...).
//
//	go run . [-env KEY=VALUE ...] FILE...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type envFlags []string

func (e *envFlags) String() string     { return strings.Join(*e, ",") }
func (e *envFlags) Set(v string) error { *e = append(*e, v); return nil }

func main() {
	var env envFlags
	flag.Var(&env, "env", "KEY=VALUE for interpolation (repeatable)")
	flag.Parse()
	status := 0
	for _, file := range flag.Args() {
		if err := check(file, env); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			status = 1
			continue
		}
		fmt.Printf("%s: ok\n", file)
	}
	os.Exit(status)
}

func check(file string, env []string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions(
		[]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnv(env),
		cli.WithName("collabry"),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	fmt.Printf("%s: services %v\n", file, project.ServiceNames())
	return nil
}
