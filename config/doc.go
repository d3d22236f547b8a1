// Package config loads, defaults and validates Stagecoach's one YAML configuration file.
//
// Loading goes raw YAML node tree → typed Config → defaults → environment overrides →
// validation. The node tree is walked against the Go types before decoding, which is how unknown
// keys, values of the wrong type and duplicate keys are caught with the line they are on, and how
// every later problem finds the line of its field. Validation never stops at the first problem:
// it returns Problems, every one of them, each printed as `file:line: field: message`.
//
// Secrets never live in the file: the webhook secret comes from STAGECOACH_WEBHOOK_SECRET or a
// file named by github.webhook_secret_file, and no message ever quotes it.
package config
