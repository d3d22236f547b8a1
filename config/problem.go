package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is and what is wrong.
type Problem struct {
	File    string // the file, or "environment" for an override
	Line    int    // 1-based; 0 when unknown
	Field   string // e.g. stages[2].trigger, apps[0].stages.test.secret_id, or an env variable
	Message string
}

// String formats the problem as `file:line: field: message`, leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	for _, s := range []string{p.Field, p.Message} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Problems is every problem found at once; it is the error Parse, Load, ApplyEnv and Validate
// return.
type Problems []Problem

// Error lists the problems one per line, in line order (problems on one line keep the order they
// were found in).
func (ps Problems) Error() string {
	sorted := slices.Clone(ps)
	slices.SortStableFunc(sorted, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
