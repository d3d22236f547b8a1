// Package markdown makes text that people and git wrote safe to show in what Stagecoach writes on
// GitHub (comments, issue bodies, check runs), and keeps those bodies inside GitHub's limits.
//
// Text from outside is shown, never obeyed: a command argument, a lock or force reason, a ref, a
// commit or pull-request title must not ping a team (`@acme/everyone`), add a link or an image,
// open an HTML element or reshape the page with Markdown. Code renders it as an inline code span
// (GitHub renders nothing inside one: no mention, no link, no emphasis); Text escapes it as words
// for titles in changelogs. GitHub refuses a comment, an issue body or a check run's summary or
// text over 65,535 characters; Limit cuts a body to fit and links to where the rest can be read.
package markdown

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBody is GitHub's limit for a comment, an issue body, and a check run's output summary and
// text, in characters. Limit counts bytes, which are never fewer than the characters GitHub
// counts, so a body Limit lets through is never refused.
const MaxBody = 65535

// MaxCode is how many characters of user text Code shows; longer text is clipped with "…".
const MaxCode = 200

// Code renders s as one inline code span, whatever it holds: line breaks become spaces, control
// and bidirectional-override characters are dropped (they could make the text read differently
// from what it is), it is clipped to MaxCode characters, and the fence is one backtick longer
// than the longest run of backticks inside, so s can never close the span early.
func Code(s string) string {
	s = strings.TrimSpace(oneLine(s))
	if s == "" {
		return "` `"
	}
	if r := []rune(s); len(r) > MaxCode {
		s = string(r[:MaxCode-1]) + "…"
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " " // CommonMark strips one space each side: the backticks stay content
	}
	return fence + s + fence
}

// Text escapes s to be read as plain words inside Markdown (a commit or pull-request title in a
// changelog): one line, no emphasis, code, links, images, tables, math or HTML, and no mention,
// cross-reference or bare URL that GitHub would turn into a link or a notification. A zero-width
// space keeps `@team`, `owner/repo#1` and `https://` from being recognised while reading the same.
func Text(s string) string {
	s = strings.TrimSpace(oneLine(s))
	var b strings.Builder
	b.Grow(len(s) + 8)
	var prev rune
	for i, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\\', '`', '*', '_', '[', ']', '~', '|', '$', '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '@':
			b.WriteString("@" + zwsp)
		case '#':
			// "#12" alone links this repository's issue, which is what a title means; "x#12"
			// and "owner/repo#12" reach into other repositories, and are broken.
			if prev != 0 && !unicode.IsSpace(prev) && prev != '(' {
				b.WriteString(zwsp)
			}
			b.WriteRune(r)
		case ':':
			b.WriteRune(r)
			if strings.HasPrefix(s[i+1:], "//") {
				b.WriteString(zwsp) // no bare-URL autolink
			}
		case '.':
			b.WriteRune(r)
			if prev == 'w' && strings.HasSuffix(strings.ToLower(s[:i]), "www") {
				b.WriteString(zwsp) // no www. autolink
			}
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

// Quote makes text Stagecoach did not write all of (an error that carries a build's own message,
// say) safe to quote on one line: it keeps its Markdown, but mentions no one and opens no HTML.
func Quote(s string) string {
	s = strings.TrimSpace(oneLine(s))
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '@' && i+1 < len(s) && isWordByte(s[i+1]):
			b.WriteString("@" + zwsp)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isWordByte(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// zwsp is a zero-width space, as an HTML entity so it is visible in the Markdown source.
const zwsp = "&#8203;"

// Cell makes Markdown safe inside a table cell: a pipe would end the cell (even inside a code
// span, where GitHub's tables still honour `\|`), a line break the row.
func Cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// Limit returns body cut to at most max bytes (MaxBody when max is 0), ending with a note that
// it was cut and, when more is not empty, a link to where the whole can be read. It cuts at a
// line break when one is near, and closes a code fence or a <details> left open, so what stays
// renders as it would have.
func Limit(body string, max int, more string) string {
	if max <= 0 {
		max = MaxBody
	}
	if len(body) <= max {
		return body
	}
	note := "\n\n---\n✂️ Cut to fit GitHub's limit of 65,535 characters."
	if more != "" {
		note += " [Read the whole](" + more + ")."
	}
	note += "\n"
	room := max - len(note) - len("\n```\n</details>\n")
	if room < 0 {
		room = 0
	}
	for room > 0 && !utf8.RuneStart(body[room]) {
		room-- // never split a character
	}
	cut := body[:room]
	if nl := strings.LastIndexByte(cut, '\n'); nl > 0 && len(cut)-nl < 4096 {
		cut = cut[:nl]
	}
	if fences := countFences(cut); fences%2 == 1 {
		cut += "\n```"
	}
	if open := strings.Count(cut, "<details>") - strings.Count(cut, "</details>"); open > 0 {
		cut += strings.Repeat("\n</details>", open)
	}
	return cut + note
}

// oneLine turns line breaks and tabs into spaces and drops other control characters and the
// bidirectional overrides and isolates.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.IsControl(r), r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == utf8.RuneError:
			return -1
		}
		return r
	}, s)
}

func longestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// countFences counts the lines that open or close a fenced code block.
func countFences(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			n++
		}
	}
	return n
}

// Clip shortens s to at most n characters (runes, not bytes: a name is never cut inside a
// letter), ending it with "…" when it was longer.
func Clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Capitalize upper-cases the first letter of s when it is an ASCII lower-case letter: the
// sentences Stagecoach starts with a reason of its own ("not allowed: ...").
func Capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
