// Package command parses the ChatOps commands people write in issue and pull-request comments
// (/promote, /deploy, /rollback, /lock, /unlock, /status, /help). Parsing is one pure function:
// it returns a command to run, a reply explaining what was wrong, or nothing when the comment is
// not for Stagecoach. Whether the author may run the command is decided elsewhere.
package command

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/markdown"
)

// Verb is what a command asks for.
type Verb string

// The verbs.
const (
	Promote  Verb = "promote"
	Deploy   Verb = "deploy"
	Rollback Verb = "rollback"
	Lock     Verb = "lock"
	Unlock   Verb = "unlock"
	Status   Verb = "status"
	Help     Verb = "help"
)

// Command is a parsed command.
type Command struct {
	Verb  Verb
	Stage string // promote, deploy, rollback, lock, unlock
	// Ref is, for /deploy, a branch, tag or sha ("" for the stage's branch head), and for
	// /promote, the release tag to ship ("" for the release of the issue it is given on). It is
	// always a valid git ref name or 7 to 40 hex digits (ValidRef).
	Ref    string
	Force  bool   // skip the stage order (admins only); needs a reason
	Reason string // lock, and forced commands
	// For is how long /lock holds the stage (`/lock prod 2h`); 0 until /unlock.
	For time.Duration
}

// MaxLock is the longest a lock may be taken for with a duration: a longer hold is a freeze,
// written in the configuration, or a lock until /unlock.
const MaxLock = 14 * 24 * time.Hour

// Result is what a comment means: a Command, or a Reply for a malformed command, or neither
// (the comment holds no command for Stagecoach).
type Result struct {
	Command *Command
	Reply   string
}

// line matches a command line: the verb right at the start of a line, as in Prow.
var line = regexp.MustCompile(`(?m)^/(promote|deploy|rollback|lock|unlock|status|help)(?:[ \t]+(.*?))?[ \t]*$`)

// Parse reads the first command in body. stages are the configured stage names; a stage not
// among them gets a reply that lists them. Lines in fenced code blocks and quotes are not
// commands (people quote commands when they explain them).
func Parse(body string, stages []string) Result {
	m := line.FindStringSubmatch(stripQuoted(body))
	if m == nil {
		return Result{}
	}
	verb := Verb(m[1])
	args, force, reason, err := splitFlags(m[2])
	if err != "" {
		return Result{Reply: err + "\n\n" + usage(verb)}
	}
	cmd := &Command{Verb: verb, Force: force, Reason: reason}
	switch verb {
	case Status, Help:
		if len(args) > 0 || force {
			return Result{Reply: fmt.Sprintf("`/%s` takes no arguments.\n\n%s", verb, usage(verb))}
		}
		return Result{Command: cmd}
	case Lock:
		if len(args) == 0 {
			return Result{Reply: "Which stage? " + usage(verb)}
		}
		cmd.Stage = args[0]
		rest := args[1:]
		if len(rest) > 0 && rest[0][0] >= '0' && rest[0][0] <= '9' {
			d, err := LockDuration(rest[0])
			if err != nil {
				return Result{Reply: fmt.Sprintf("%s is no duration for a lock: %v.\n\n%s", markdown.Code(rest[0]), err, usage(verb))}
			}
			cmd.For, rest = d, rest[1:]
		}
		cmd.Reason = unquote(strings.TrimSpace(strings.Join(rest, " ")))
		if force {
			return Result{Reply: "`/lock` has no `--force`.\n\n" + usage(verb)}
		}
	default:
		if len(args) == 0 {
			return Result{Reply: "Which stage? " + usage(verb)}
		}
		cmd.Stage = args[0]
		max := 1
		if verb == Deploy || verb == Promote {
			max = 2
			if len(args) == 2 {
				cmd.Ref = args[1]
			}
		}
		if len(args) > max {
			return Result{Reply: fmt.Sprintf("Too many arguments: %s.\n\n%s", markdown.Code(strings.Join(args[max:], " ")), usage(verb))}
		}
		if cmd.Ref != "" {
			if err := ValidRef(cmd.Ref); err != nil {
				return Result{Reply: fmt.Sprintf("%s is not a branch, tag or sha: %v.\n\n%s", markdown.Code(cmd.Ref), err, usage(verb))}
			}
		}
		if force && (verb == Unlock || verb == Rollback) {
			return Result{Reply: fmt.Sprintf("`/%s` has no `--force`.\n\n%s", verb, usage(verb))}
		}
	}
	if !slices.Contains(stages, cmd.Stage) {
		return Result{Reply: fmt.Sprintf("There is no stage %s. The stages are %s.", markdown.Code(cmd.Stage), list(stages))}
	}
	return Result{Command: cmd}
}

// splitFlags separates arguments from `--force` and its reason (the rest of the line, quotes
// optional).
func splitFlags(s string) (args []string, force bool, reason, problem string) {
	before, after, found := strings.Cut(" "+s+" ", " --force ")
	if !found {
		if strings.Contains(s, "--") {
			return nil, false, "", fmt.Sprintf("Unknown option in %s.", markdown.Code(s))
		}
		return strings.Fields(s), false, "", ""
	}
	reason = strings.Trim(strings.TrimSpace(after), `"'`)
	if reason == "" {
		return nil, false, "", "`--force` needs a reason, recorded with the deploy: `--force \"hotfix for INC-42\"`."
	}
	return strings.Fields(before), true, reason, ""
}

// LockDuration reads how long a lock holds: a Go duration ("2h", "90m", "1h30m") or whole days
// ("1d", "3d"), from a minute to MaxLock.
func LockDuration(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, errors.New("write it like `2h`, `30m` or `1d`")
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New("write it like `2h`, `30m` or `1d`")
		}
	}
	switch {
	case d < time.Minute:
		return 0, errors.New("a lock holds for at least a minute")
	case d > MaxLock:
		return 0, errors.New("a lock holds for at most 14 days; `/lock <stage>` without a duration holds until `/unlock`")
	}
	return d, nil
}

// unquote takes the quotes off a reason written in them.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// stripQuoted blanks fenced code blocks and quoted lines.
func stripQuoted(body string) string {
	lines := strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n")
	fenced := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			lines[i] = ""
			continue
		}
		if fenced || strings.HasPrefix(t, ">") {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

var usages = map[Verb]string{
	Promote:  "`/promote <stage> [tag] [--force \"reason\"]`: move the stage to the commit live on the stage before it and deploy it; to the release stage, the release of the issue it is given on, or the release tag named.",
	Deploy:   "`/deploy <stage> [ref] [--force \"reason\"]`: deploy a branch, tag or sha (default: the stage's branch) to the stage.",
	Rollback: "`/rollback <stage>`: put back what ran before: the previous deploy's image, with no build (on a stage with two slots, switch back to the other slot).",
	Lock:     "`/lock <stage> [duration] [reason]`: hold automatic deploys and commands for the stage, for a while (`2h`, `30m`, `1d`; at most 14 days) or until `/unlock`.",
	Unlock:   "`/unlock <stage>`: release a lock.",
	Status:   "`/status`: what is live on each stage, since when, and by whom.",
	Help:     "`/help`: the commands.",
}

func usage(v Verb) string { return "Usage: " + usages[v] }

// Usage is how a command is written and what it does, as /help lists it ("" for no command).
func Usage(v Verb) string { return usages[v] }

// ValidRef checks a ref given in a command before it goes anywhere near an API path: 7 to 40 hex
// digits (a sha), or a name git would accept for a branch or tag (git check-ref-format), which
// rules out "..", spaces, control characters, ~ ^ : ? * [ \, "@{", a leading "-" or "/", a
// trailing "/", "." or ".lock", and components starting with ".".
func ValidRef(ref string) error {
	switch {
	case ref == "":
		return errors.New("it is empty")
	case len(ref) > 255:
		return errors.New("it is longer than 255 characters")
	case shaRE.MatchString(ref):
		return nil
	case ref == "@":
		return errors.New("`@` alone is no ref")
	case strings.HasPrefix(ref, "-"):
		return errors.New("a ref cannot start with `-`")
	case strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") || strings.Contains(ref, "//"):
		return errors.New("a ref cannot start or end with `/`, or hold `//`")
	case strings.HasSuffix(ref, "."):
		return errors.New("a ref cannot end with `.`")
	case strings.Contains(ref, ".."):
		return errors.New("a ref cannot hold `..`")
	case strings.Contains(ref, "@{"):
		return errors.New("a ref cannot hold `@{`")
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return errors.New("a ref cannot hold spaces, control characters or any of `~ ^ : ? * [ \\`")
		}
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return errors.New("no part of a ref can start with `.` or end with `.lock`")
		}
	}
	return nil
}

var shaRE = regexp.MustCompile(`^[0-9a-fA-F]{7,40}$`)

func list(stages []string) string {
	quoted := make([]string, len(stages))
	for i, s := range stages {
		quoted[i] = "`" + s + "`"
	}
	return strings.Join(quoted, ", ")
}
