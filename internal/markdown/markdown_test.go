package markdown

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCode(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"plain", "v1.2.0", "`v1.2.0`"},
		{"a mention stays inside the span", "prod @acme/everyone", "`prod @acme/everyone`"},
		{"backticks cannot close the span", "a`b``c", "```a`b``c```"},
		{"a leading backtick is padded", "`x", "`` `x ``"},
		{"line breaks become spaces", "one\ntwo\r\nthree", "`one two  three`"},
		{"bidi overrides and controls are dropped", "ab\u202Ec\x00d", "`abcd`"},
		{"empty", "  ", "` `"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Code(tt.in); got != tt.want {
				t.Errorf("Code(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	long := strings.Repeat("x", 500)
	if got := Code(long); utf8.RuneCountInString(got) != MaxCode+2 || !strings.HasSuffix(got, "…`") {
		t.Errorf("Code of 500 characters = %d characters %q..., want clipped to %d", utf8.RuneCountInString(got), got[:20], MaxCode)
	}
}

// TestTitleCannotMentionLinkOrInjectMarkdown: a commit or pull-request title is words, whatever
// it holds.
func TestTitleCannotMentionLinkOrInjectMarkdown(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"plain", "Add the login page", "Add the login page"},
		{"a team mention", "Ping @acme/everyone now", "Ping @&#8203;acme/everyone now"},
		{"a link", "[click](https://evil.example)", `\[click\](https:&#8203;//evil.example)`},
		{"an image", "![x](https://evil.example/p.png)", `\!\[x\](https:&#8203;//evil.example/p.png)`},
		{"HTML", "<img src=x onerror=alert(1)> & <details>", "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;details&gt;"},
		{"emphasis and code", "*bold* _it_ `code` ~~gone~~", `\*bold\* \_it\_ \` + "`" + `code\` + "`" + ` \~\~gone\~\~`},
		{"a table and math", "a | b $x$", `a \| b \$x\$`},
		{"own issue stays, cross-repo breaks", "Fix #12 and acme/other#3", "Fix #12 and acme/other&#8203;#3"},
		{"www autolink", "see www.example.com", "see www.&#8203;example.com"},
		{"new lines", "title\n\n# heading", "title  # heading"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Text(tt.in)
			if got != tt.want {
				t.Errorf("Text(%q) =\n %q, want\n %q", tt.in, got, tt.want)
			}
			for _, bad := range []string{"@acme", "](", "<img", "https://"} {
				if strings.Contains(strings.ReplaceAll(got, `\]`, ""), bad) {
					t.Errorf("Text(%q) = %q still holds %q", tt.in, got, bad)
				}
			}
		})
	}
}

func TestQuote(t *testing.T) {
	in := "build failed in BUILD: npm test: @acme/everyone <script>\n`x`"
	if got, want := Quote(in), "build failed in BUILD: npm test: @&#8203;acme/everyone &lt;script> `x`"; got != want {
		t.Errorf("Quote = %q, want %q", got, want)
	}
	if got := Quote("mail me@example.com or @ alone"); got != "mail me@&#8203;example.com or @ alone" {
		t.Errorf("Quote = %q", got)
	}
}

func TestCell(t *testing.T) {
	if got := Cell("a|b\nc"); got != `a\|b c` {
		t.Errorf("Cell = %q", got)
	}
}

// TestCommentOverGitHubLimitIsCutWithALink: a body longer than GitHub takes is cut below the
// limit, at a line, with open fences and <details> closed and a link to the whole.
func TestCommentOverGitHubLimitIsCutWithALink(t *testing.T) {
	var b strings.Builder
	b.WriteString("<details><summary>commits</summary>\n\n```\n")
	for b.Len() < 100_000 {
		b.WriteString("- é commit line that goes on and on ✂ |\n")
	}
	got := Limit(b.String(), 0, "https://github.com/acme/app/compare/a...b")
	if len(got) > MaxBody {
		t.Fatalf("cut to %d bytes, over %d", len(got), MaxBody)
	}
	if !utf8.ValidString(got) {
		t.Error("the cut split a character")
	}
	for _, want := range []string{"\n```\n</details>\n", "[Read the whole](https://github.com/acme/app/compare/a...b)"} {
		if !strings.Contains(got, want) {
			t.Errorf("cut body lacks %q: ...%s", want, got[len(got)-300:])
		}
	}
	if short := "short"; Limit(short, 0, "x") != short {
		t.Error("a short body changed")
	}
	if got := Limit(strings.Repeat("ab", 100), 50, ""); len(got) > 50+len("\n\n---\n✂️ Cut to fit GitHub's limit of 65,535 characters.\n") {
		t.Errorf("cut to %d bytes", len(got))
	}
}

func TestClipAndCapitalize(t *testing.T) {
	for _, c := range []struct{ in, clipped, capital string }{
		{"short", "short", "Short"},
		{"exactly ten", "exactly t…", "Exactly ten"},
		{"ééééééééééééé", "ééééééééé…", "ééééééééééééé"}, // runes, never half a letter; no ASCII to raise
		{"", "", ""},
	} {
		t.Run(c.in, func(t *testing.T) {
			if got := Clip(c.in, 10); got != c.clipped {
				t.Errorf("Clip(%q, 10) = %q, want %q", c.in, got, c.clipped)
			}
			if got := Capitalize(c.in); got != c.capital {
				t.Errorf("Capitalize(%q) = %q, want %q", c.in, got, c.capital)
			}
		})
	}
}
