package window

import (
	"strings"
	"testing"
	"time"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := LoadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func weekly(t *testing.T, days, hours string) Weekly {
	t.Helper()
	d, err := ParseDays(days)
	if err != nil {
		t.Fatal(err)
	}
	s, e, err := ParseHours(hours)
	if err != nil {
		t.Fatal(err)
	}
	return Weekly{Days: d, Start: s, End: e}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestCalendar checks, at moments given by a fake clock, whether deploys may start and when
// that changes: weekly windows in a zone, across midnight and daylight-saving changes, and
// freezes over them.
func TestCalendar(t *testing.T) {
	berlin, ny, utcZ := zone(t, "Europe/Berlin"), zone(t, "America/New_York"), time.UTC
	prod := func(extra ...Freeze) *Calendar {
		return &Calendar{Zone: berlin, Weekly: []Weekly{weekly(t, "Mon-Thu", "09:00-16:00")}, Freezes: extra}
	}
	yearEnd := Freeze{From: time.Date(2025, 12, 22, 0, 0, 0, 0, berlin), Until: time.Date(2026, 1, 5, 0, 0, 0, 0, berlin), Reason: "year-end"}
	tests := []struct {
		name string
		cal  *Calendar
		at   string // RFC 3339
		open bool
		next string // RFC 3339; "" for none
	}{
		// Winter (CET, +01:00): Monday 2025-01-13.
		{"before the window on Monday", prod(), "2025-01-13T07:59:00Z", false, "2025-01-13T08:00:00Z"},
		{"a second before it opens", prod(), "2025-01-13T07:59:59Z", false, "2025-01-13T08:00:00Z"},
		{"as it opens", prod(), "2025-01-13T08:00:00Z", true, "2025-01-13T15:00:00Z"},
		{"a minute before it closes", prod(), "2025-01-13T14:59:00Z", true, "2025-01-13T15:00:00Z"},
		{"as it closes", prod(), "2025-01-13T15:00:00Z", false, "2025-01-14T08:00:00Z"},
		{"Thursday after it closed waits for Monday", prod(), "2025-01-16T15:30:00Z", false, "2025-01-20T08:00:00Z"},
		{"Friday waits for Monday", prod(), "2025-01-17T09:00:00Z", false, "2025-01-20T08:00:00Z"},
		{"Sunday late waits for Monday", prod(), "2025-01-19T23:30:00Z", false, "2025-01-20T08:00:00Z"},
		// Summer (CEST, +02:00): the same wall-clock hours are an hour earlier in UTC.
		{"summer: 09:00 is 07:00 UTC", prod(), "2025-06-02T07:00:00Z", true, "2025-06-02T14:00:00Z"},
		{"summer: 08:59 is closed", prod(), "2025-06-02T06:59:00Z", false, "2025-06-02T07:00:00Z"},
		// Clocks go forward on Sunday 2025-03-30 at 02:00 CET (01:00 UTC): Friday waits for the
		// Monday, whose 09:00 is CEST.
		{"over the spring change", prod(), "2025-03-28T15:00:00Z", false, "2025-03-31T07:00:00Z"},
		// and back on Sunday 2025-10-26 at 03:00 CEST (01:00 UTC).
		{"over the autumn change", prod(), "2025-10-24T14:00:00Z", false, "2025-10-27T08:00:00Z"},
		{"a window that starts in the skipped hour opens when the clock jumps",
			&Calendar{Zone: berlin, Weekly: []Weekly{weekly(t, "Sun", "02:30-03:30")}}, "2025-03-30T00:45:00Z", false, "2025-03-30T01:00:00Z"},
		{"the jumped window is open after the jump",
			&Calendar{Zone: berlin, Weekly: []Weekly{weekly(t, "Sun", "02:30-03:30")}}, "2025-03-30T01:10:00Z", true, "2025-03-30T01:30:00Z"},
		{"a window wholly in the skipped hour waits a week",
			&Calendar{Zone: berlin, Weekly: []Weekly{weekly(t, "Sun", "02:10-02:50")}}, "2025-03-30T00:30:00Z", false, "2025-04-06T00:10:00Z"},
		{"the repeated hour: open the first time round",
			&Calendar{Zone: berlin, Weekly: []Weekly{weekly(t, "Sun", "02:15-02:45")}}, "2025-10-26T00:20:00Z", true, "2025-10-26T00:45:00Z"},
		{"the repeated hour: closed between, open again the second time round",
			&Calendar{Zone: berlin, Weekly: []Weekly{weekly(t, "Sun", "02:15-02:45")}}, "2025-10-26T00:50:00Z", false, "2025-10-26T01:15:00Z"},
		{"New York springs forward on another day",
			&Calendar{Zone: ny, Weekly: []Weekly{weekly(t, "Mon-Fri", "09:00-17:00")}}, "2025-03-08T12:00:00Z", false, "2025-03-10T13:00:00Z"},
		// Across midnight: Friday 22:00 to Saturday 02:00.
		{"late on Friday", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Fri", "22:00-02:00")}}, "2025-01-17T23:59:00Z", true, "2025-01-18T02:00:00Z"},
		{"early on Saturday, in Friday's window", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Fri", "22:00-02:00")}}, "2025-01-18T01:00:00Z", true, "2025-01-18T02:00:00Z"},
		{"Saturday's own late hours are closed", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Fri", "22:00-02:00")}}, "2025-01-18T22:30:00Z", false, "2025-01-24T22:00:00Z"},
		{"Friday before it", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Fri", "22:00-02:00")}}, "2025-01-17T21:00:00Z", false, "2025-01-17T22:00:00Z"},
		{"the whole of Saturday", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Sat", "00:00-24:00")}}, "2025-01-18T23:59:00Z", true, "2025-01-19T00:00:00Z"},
		{"a week wrapping over Sunday", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Sat-Mon", "10:00-11:00")}}, "2025-01-14T10:30:00Z", false, "2025-01-18T10:00:00Z"},
		// Freezes.
		{"frozen on a Monday in the window", prod(yearEnd), "2025-12-22T10:00:00Z", false, "2026-01-05T08:00:00Z"},
		{"the freeze starts ahead", prod(yearEnd), "2025-12-18T10:00:00Z", true, "2025-12-18T15:00:00Z"},
		{"the day before the freeze closes at its start", prod(yearEnd), "2025-12-21T22:00:00Z", false, "2026-01-05T08:00:00Z"},
		{"no windows: the freeze's end", &Calendar{Zone: berlin, Freezes: []Freeze{yearEnd}}, "2025-12-30T12:00:00Z", false, "2026-01-04T23:00:00Z"},
		{"no windows: open until the freeze", &Calendar{Zone: berlin, Freezes: []Freeze{yearEnd}}, "2025-12-01T12:00:00Z", true, "2025-12-21T23:00:00Z"},
		{"no windows and nothing ahead: never closes", &Calendar{Zone: berlin, Freezes: []Freeze{yearEnd}}, "2026-02-01T12:00:00Z", true, ""},
		{"overlapping freezes chain", &Calendar{Zone: utcZ, Freezes: []Freeze{
			{From: utc("2025-05-01T00:00:00Z"), Until: utc("2025-05-05T00:00:00Z"), Reason: "a"},
			{From: utc("2025-05-04T00:00:00Z"), Until: utc("2025-05-10T12:00:00Z"), Reason: "b"}}}, "2025-05-02T00:00:00Z", false, "2025-05-10T12:00:00Z"},
		{"a freeze ending inside a window opens at its end", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Mon-Fri", "09:00-16:00")},
			Freezes: []Freeze{{From: utc("2025-05-05T00:00:00Z"), Until: utc("2025-05-07T12:00:00Z"), Reason: "x"}}}, "2025-05-06T10:00:00Z", false, "2025-05-07T12:00:00Z"},
		{"a freeze ending outside the windows waits for the next", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Mon-Fri", "09:00-16:00")},
			Freezes: []Freeze{{From: utc("2025-05-05T00:00:00Z"), Until: utc("2025-05-07T18:00:00Z"), Reason: "x"}}}, "2025-05-06T10:00:00Z", false, "2025-05-08T09:00:00Z"},
		{"a freeze through the weekend waits for Monday", &Calendar{Zone: utcZ, Weekly: []Weekly{weekly(t, "Mon-Fri", "09:00-16:00")},
			Freezes: []Freeze{{From: utc("2025-05-08T00:00:00Z"), Until: utc("2025-05-09T18:00:00Z"), Reason: "x"}}}, "2025-05-08T10:00:00Z", false, "2025-05-12T09:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := utc(tt.at)
			s := tt.cal.At(at)
			if s.Open != tt.open {
				t.Errorf("open at %s (%s) = %v, want %v", tt.at, tt.cal.Format(at), s.Open, tt.open)
			}
			var want time.Time
			if tt.next != "" {
				want = utc(tt.next)
			}
			if !s.Next.Equal(want) {
				t.Errorf("next change after %s = %s, want %s", tt.at, s.Next.UTC().Format(time.RFC3339), want.UTC().Format(time.RFC3339))
			}
			// The change really is one: the state just before it is this one, at it the other.
			if !s.Next.IsZero() {
				if tt.cal.Open(s.Next.Add(-time.Second)) != s.Open && s.Next.Add(-time.Second).After(at) {
					t.Errorf("the state changed before %s", s.Next)
				}
				if tt.cal.Open(s.Next) == s.Open {
					t.Errorf("the state did not change at %s", s.Next)
				}
			}
		})
	}
}

// TestNextIsTheFirstChange sweeps a fortnight over the spring change minute by minute and checks
// every answer against the brute-force truth: nothing opens (or closes) before the moment At
// names.
func TestNextIsTheFirstChange(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	cal := &Calendar{Zone: berlin, Weekly: []Weekly{weekly(t, "Mon-Thu", "09:00-16:00"), weekly(t, "Sat,Sun", "01:30-02:30"), weekly(t, "Fri", "23:00-01:00")},
		Freezes: []Freeze{{From: utc("2025-03-26T10:17:00Z"), Until: utc("2025-03-27T09:43:00Z"), Reason: "x"}}}
	start := utc("2025-03-24T00:00:00Z")
	for at := start; at.Before(start.Add(14 * 24 * time.Hour)); at = at.Add(7 * time.Minute) {
		s := cal.At(at)
		if s.Next.IsZero() {
			t.Fatalf("no change after %s", at)
		}
		for m := at.Add(time.Minute).Truncate(time.Minute); m.Before(s.Next); m = m.Add(time.Minute) {
			if cal.Open(m) != s.Open {
				t.Fatalf("at %s: At says %v until %s, but it is %v at %s", at, s.Open, s.Next, !s.Open, m)
			}
		}
	}
}

func TestParseDays(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"Mon-Thu", "Mon-Thu", ""},
		{"mon,wed,FRI", "Mon,Wed,Fri", ""},
		{"Fri-Mon", "Mon,Fri-Sun", ""},
		{"Mon-Wed, Fri", "Mon-Wed,Fri", ""},
		{"Saturday,Sunday", "Sat,Sun", ""},
		{"daily", "daily", ""},
		{"Mon-Sun", "daily", ""},
		{"Mnd-Thu", "", `unknown day "Mnd"`},
		{"", "", "required"},
		{"Mon,", "", `unknown day ""`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDays(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseDays(%q) = %v, want an error with %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || FormatDays(d) != tt.want {
				t.Fatalf("ParseDays(%q) = %s, %v; want %s", tt.in, FormatDays(d), err, tt.want)
			}
		})
	}
}

func TestParseHours(t *testing.T) {
	for _, tt := range []struct {
		in         string
		start, end int
		err        string
	}{
		{"09:00-16:00", 540, 960, ""},
		{" 9:30 - 17:45 ", 570, 1065, ""},
		{"22:00-02:00", 1320, 120, ""},
		{"00:00-24:00", 0, 1440, ""},
		{"16:00-16:00", 0, 0, "opens and closes at the same time"},
		{"9-16", 0, 0, "want HH:MM-HH:MM"},
		{"09:00", 0, 0, "want HH:MM-HH:MM"},
		{"24:00-09:00", 0, 0, "is no time of day"},
		{"09:60-10:00", 0, 0, "is no time of day"},
		{"09:00-25:00", 0, 0, "is no time of day"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			s, e, err := ParseHours(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseHours(%q) = %v, want an error with %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || s != tt.start || e != tt.end {
				t.Fatalf("ParseHours(%q) = %d, %d, %v; want %d, %d", tt.in, s, e, err, tt.start, tt.end)
			}
		})
	}
}

func TestParseMoment(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	for _, tt := range []struct{ in, want, err string }{
		{"2025-12-22", "2025-12-21T23:00:00Z", ""},
		{"2025-07-01", "2025-06-30T22:00:00Z", ""},
		{"2025-12-22 18:00", "2025-12-22T17:00:00Z", ""},
		{"2025-12-22T18:00", "2025-12-22T17:00:00Z", ""},
		{"2025-12-22T18:00:00-05:00", "2025-12-22T23:00:00Z", ""},
		{"22.12.2025", "", "want a date such as 2025-12-22"},
		{"2025-13-01", "", "want a date"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMoment(tt.in, berlin)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseMoment(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || !got.Equal(utc(tt.want)) {
				t.Fatalf("ParseMoment(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLoadZone(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"", true}, {"UTC", true}, {"Europe/Berlin", true}, {"America/Argentina/Buenos_Aires", true},
		{"Europe/Berln", false}, {"Local", false}, {"../../etc/passwd", false}, {"/etc/localtime", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := LoadZone(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("LoadZone(%q) = %v, %v", tt.name, l, err)
			}
			if err != nil && !strings.Contains(err.Error(), "want an IANA name") {
				t.Fatalf("the error does not say what to write: %v", err)
			}
		})
	}
}

func TestDescribeAndFormat(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	cal := &Calendar{Zone: berlin, Weekly: []Weekly{weekly(t, "Mon-Thu", "09:00-16:00"), weekly(t, "Fri", "22:00-02:00")}}
	if got, want := cal.Describe(), "Mon-Thu 09:00-16:00, Fri 22:00-02:00 Europe/Berlin"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	if got, want := cal.Format(utc("2025-01-13T08:00:00Z")), "Mon Jan 13 09:00 CET"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	if got, want := cal.Format(utc("2025-06-02T07:00:00Z")), "Mon Jun 2 09:00 CEST"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}
