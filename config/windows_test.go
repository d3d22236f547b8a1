package config

import (
	"testing"
	"time"
)

// TestStageCalendar reads a stage's windows and freezes as the calendar the admission gate and
// the pipeline use.
func TestStageCalendar(t *testing.T) {
	c := mustParse(t, `
stages:
  - name: prod
    credentials: prod
    time_zone: Europe/Berlin
    windows: [{days: Mon-Thu, hours: "09:00-16:00"}]
    freezes: [{from: 2025-12-22, until: "2026-01-05 12:00", reason: Year-end freeze}]
  - {name: dev, credentials: nonprod}
`)
	cal, err := c.Stage("prod").Calendar()
	if err != nil || cal == nil {
		t.Fatalf("Calendar() = %v, %v", cal, err)
	}
	for _, tt := range []struct {
		at   string
		open bool
	}{
		{"2025-01-13T08:00:00Z", true},  // Monday 09:00 CET
		{"2025-01-13T07:59:00Z", false}, // 08:59
		{"2025-01-17T10:00:00Z", false}, // Friday
		{"2025-12-22T10:00:00Z", false}, // frozen
		{"2026-01-05T10:59:00Z", false}, // 11:59 CET: still frozen
		{"2026-01-05T11:00:00Z", true},  // the freeze ended at 12:00 CET
	} {
		at, _ := time.Parse(time.RFC3339, tt.at)
		if got := cal.Open(at); got != tt.open {
			t.Errorf("open at %s = %v, want %v", tt.at, got, tt.open)
		}
	}
	if got := cal.At(mustTime(t, "2025-12-23T10:00:00Z")).Freeze; got == nil || got.Reason != "Year-end freeze" {
		t.Errorf("the freeze holding on Dec 23 = %+v", got)
	}
	if cal, err := c.Stage("dev").Calendar(); cal != nil || err != nil {
		t.Errorf("a stage without windows or freezes has calendar %v, %v; want none (any time)", cal, err)
	}
	if z := c.Stage("prod").Zone(); z.String() != "Europe/Berlin" {
		t.Errorf("Zone() = %s", z)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}
