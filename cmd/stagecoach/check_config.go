package main

import (
	"flag"
	"io"

	"github.com/stagecoach/stagecoach/config"
)

// checkConfig validates one configuration file and prints ok or every problem with its line.
func checkConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"check-config takes one FILE"}
	}
	if err := config.Check(fs.Arg(0), getenv, stdout); err != nil {
		return errReported // Check printed every problem
	}
	return nil
}
