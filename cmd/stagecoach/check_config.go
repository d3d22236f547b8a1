package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/stagecoach/stagecoach/config"
)

// checkConfig validates one configuration file and prints ok or every problem with its line.
// With --repo and --repo-file it checks a repository's own file against the server's instead,
// as Stagecoach will when the file reaches the repository's default branch.
func checkConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", "", "the repository (`owner/name`) whose own file --repo-file is")
	repoFile := fs.String("repo-file", "", "a repository's own configuration `file` (.github/stagecoach.yml) to check against FILE")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"check-config takes one FILE"}
	}
	if (*repo == "") != (*repoFile == "") {
		return usageError{"--repo and --repo-file go together"}
	}
	if *repoFile == "" {
		if err := config.Check(fs.Arg(0), getenv, stdout); err != nil {
			return errReported // Check printed every problem
		}
		return nil
	}
	cfg, err := config.Load(fs.Arg(0), getenv)
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	data, err := os.ReadFile(*repoFile)
	if err != nil {
		return fmt.Errorf("reading the repository's file: %w", err)
	}
	_, err = cfg.ParseRepoFile(*repo, *repoFile, data)
	var ps config.Problems
	switch {
	case err == nil:
		if !cfg.RepoConfigOn(*repo) {
			fmt.Fprintf(stdout, "ok, but Stagecoach does not read %s's file: no app of it allows an override (repo_config)\n", *repo)
			return nil
		}
		fmt.Fprintln(stdout, "ok")
		return nil
	case errors.As(err, &ps):
		fmt.Fprintln(stdout, ps.Error())
		return errReported
	}
	return err
}
