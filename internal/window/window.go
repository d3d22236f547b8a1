// Package window owns when a stage takes deploys: weekly deploy windows in a time zone (prod
// Mon-Thu 09:00-16:00 Europe/Berlin) and dated freezes with a reason. A Calendar answers, for any
// moment, whether deploys may start then and, when they may not, when they next may. It is pure:
// the moment is always given (tests use a fake clock), and windows are wall-clock times in their
// zone, so they hold across daylight-saving changes: 09:00 is 09:00 in summer and in winter, a
// window whose start falls in the hour skipped in spring opens when the clock jumps, and a
// window in the hour repeated in autumn is open both times round.
package window

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Weekly is one weekly window: the days it opens on and its hours on those days.
type Weekly struct {
	Days [7]bool // indexed by time.Weekday
	// Start and End are minutes after midnight (End may be 1440, the end of the day). When End
	// is not after Start the window crosses midnight: it ends at End on the next day.
	Start, End int
}

// crosses reports whether the window ends on the day after it starts.
func (w Weekly) crosses() bool { return w.End <= w.Start }

// open reports whether the window is open at minute m of a day that is weekday wd.
func (w Weekly) open(wd time.Weekday, m int) bool {
	if !w.crosses() {
		return w.Days[wd] && m >= w.Start && m < w.End
	}
	return w.Days[wd] && m >= w.Start || w.Days[(wd+6)%7] && m < w.End
}

// String spells the window as it is configured: "Mon-Thu 09:00-16:00".
func (w Weekly) String() string {
	return FormatDays(w.Days) + " " + clock(w.Start) + "-" + clock(w.End)
}

// Freeze is a dated period in which no deploy starts, and why.
type Freeze struct {
	From, Until time.Time // the freeze holds from From up to (not including) Until
	Reason      string
}

// holds reports whether the freeze holds at t.
func (f Freeze) holds(t time.Time) bool { return !t.Before(f.From) && t.Before(f.Until) }

// Calendar is when one stage takes deploys. Without weekly windows every moment is inside one;
// a freeze closes the stage whatever the windows say.
type Calendar struct {
	Zone    *time.Location // where the windows' hours are read; never nil
	Weekly  []Weekly
	Freezes []Freeze
}

// State is what a calendar says of one moment.
type State struct {
	Open bool
	// Freeze is the freeze that holds at the moment, when one does (the one that ends last).
	Freeze *Freeze
	// Next is when the state changes: for a closed stage when it opens, for an open one when it
	// closes. It is zero when that does not happen within the horizon (an open stage with no
	// windows and no freeze ahead never closes).
	Next time.Time
}

// horizon bounds the search for the next change past the last freeze: any weekly window
// recurs within a week, so eight days always find one.
const horizon = 8 * 24 * time.Hour

// At says whether deploys may start at t, and when that changes.
func (c *Calendar) At(t time.Time) State {
	s := State{Open: c.open(t)}
	if f := c.freezeAt(t); f != nil {
		s.Freeze = f
	}
	s.Next = c.next(t, !s.Open)
	return s
}

// Open reports whether deploys may start at t.
func (c *Calendar) Open(t time.Time) bool { return c.open(t) }

func (c *Calendar) open(t time.Time) bool {
	return c.freezeAt(t) == nil && c.inWindow(t)
}

// inWindow reports whether t is inside a weekly window (always, when there are none).
func (c *Calendar) inWindow(t time.Time) bool {
	if len(c.Weekly) == 0 {
		return true
	}
	lt := t.In(c.Zone)
	m := lt.Hour()*60 + lt.Minute()
	for _, w := range c.Weekly {
		if w.open(lt.Weekday(), m) {
			return true
		}
	}
	return false
}

// freezeAt is the freeze holding at t that ends last, or nil.
func (c *Calendar) freezeAt(t time.Time) *Freeze {
	var out *Freeze
	for i := range c.Freezes {
		if f := &c.Freezes[i]; f.holds(t) && (out == nil || f.Until.After(out.Until)) {
			out = f
		}
	}
	return out
}

// next finds the first moment after t at which the calendar is open (want true) or closed
// (want false). Open and closed change only at a window's start or end, a freeze's start or
// end, or a change of the zone's offset, so those are the only moments looked at.
func (c *Calendar) next(t time.Time, want bool) time.Time {
	if !want && len(c.Weekly) == 0 && !slices.ContainsFunc(c.Freezes, func(f Freeze) bool { return f.Until.After(t) }) {
		return time.Time{} // nothing ahead can close it
	}
	limit := t.Add(horizon)
	for _, f := range c.Freezes {
		if f.Until.Add(horizon).After(limit) {
			limit = f.Until.Add(horizon)
		}
	}
	for cur := t; cur.Before(limit); {
		nxt, ok := c.change(cur)
		if !ok {
			return time.Time{}
		}
		if c.open(nxt) == want {
			return nxt
		}
		cur = nxt
	}
	return time.Time{}
}

// change is the first moment after t at which the calendar may change.
func (c *Calendar) change(t time.Time) (time.Time, bool) {
	var best time.Time
	consider := func(x time.Time) {
		if x.After(t) && (best.IsZero() || x.Before(best)) {
			best = x
		}
	}
	for _, f := range c.Freezes {
		consider(f.From)
		consider(f.Until)
	}
	if len(c.Weekly) > 0 {
		lt := t.In(c.Zone)
		for d := -1; d <= 8; d++ {
			day := time.Date(lt.Year(), lt.Month(), lt.Day()+d, 12, 0, 0, 0, c.Zone)
			for _, w := range c.Weekly {
				for _, m := range []int{w.Start, w.End} {
					for _, x := range wallTimes(day, m, c.Zone) {
						consider(x)
					}
				}
			}
		}
		// The clock jumping (daylight saving) can move it into or out of a window.
		for x, i := t, 0; i < 4; i++ {
			_, end := x.In(c.Zone).ZoneBounds()
			if end.IsZero() || !end.After(x) {
				break
			}
			consider(end)
			x = end
		}
	}
	return best, !best.IsZero()
}

// wallTimes are the moments at which the clock in zone reads minute m (0-1440) of day's date:
// none in the hour skipped when clocks go forward, two in the hour repeated when they go back.
func wallTimes(day time.Time, m int, zone *time.Location) []time.Time {
	y, mo, d := day.Date()
	if m == 1440 { // the end of the day is the start of the next
		y, mo, d = time.Date(y, mo, d+1, 12, 0, 0, 0, zone).Date()
		m = 0
	}
	wall := time.Date(y, mo, d, m/60, m%60, 0, 0, time.UTC) // the wall clock's reading, as if in UTC
	var out []time.Time
	for _, probe := range []time.Duration{-18 * time.Hour, 0, 18 * time.Hour} {
		_, off := wall.Add(probe).In(zone).Zone()
		x := wall.Add(-time.Duration(off) * time.Second)
		lx := x.In(zone)
		if lx.Hour() == m/60 && lx.Minute() == m%60 && lx.Day() == d && !slices.ContainsFunc(out, x.Equal) {
			out = append(out, x)
		}
	}
	return out
}

// Describe spells the calendar's windows for people: "Mon-Thu 09:00-16:00 Europe/Berlin"; ""
// when it has none.
func (c *Calendar) Describe() string {
	if len(c.Weekly) == 0 {
		return ""
	}
	parts := make([]string, len(c.Weekly))
	for i, w := range c.Weekly {
		parts[i] = w.String()
	}
	return strings.Join(parts, ", ") + " " + c.Zone.String()
}

// Format is a moment as people read it in the calendar's zone: "Mon Jan 5 09:00 CET".
func (c *Calendar) Format(t time.Time) string { return Format(t, c.Zone) }

// Format is t as people read it in zone: "Mon Jan 5 09:00 CET".
func Format(t time.Time, zone *time.Location) string {
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format("Mon Jan 2 15:04 MST")
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
