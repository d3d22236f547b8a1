package config

import (
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/internal/window"
)

// Window is one weekly deploy window of a stage, in the stage's time_zone: deploys to the stage
// start only inside one of its windows.
type Window struct {
	// Days it opens on: "Mon-Thu", "Mon,Wed,Fri", "Fri-Mon" or "daily".
	Days string `yaml:"days"`
	// Hours is when on those days: "09:00-16:00"; "22:00-02:00" ends the next day; "00:00-24:00"
	// is the whole day.
	Hours string `yaml:"hours"`
}

// Freeze is a dated period in which no deploy to the stage starts (a release freeze, an audit,
// the holidays); a rollback and an admin's --force still do.
type Freeze struct {
	// From and Until bound it: "2025-12-22" (that day's midnight), "2025-12-22 18:00" (in the
	// stage's time_zone) or RFC 3339. It holds from From up to Until.
	From  string `yaml:"from"`
	Until string `yaml:"until"`
	// Reason is what people read when a deploy waits for the freeze to end.
	Reason string `yaml:"reason"`
}

// Calendar is when the stage takes deploys: nil when it has no windows and no freezes (any
// time). The error is a configuration problem Validate reports (it never happens to a loaded
// configuration).
func (s *Stage) Calendar() (*window.Calendar, error) {
	if len(s.Windows) == 0 && len(s.Freezes) == 0 {
		return nil, nil
	}
	zone, err := window.LoadZone(s.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", s.Name, err)
	}
	cal := &window.Calendar{Zone: zone}
	for i, w := range s.Windows {
		days, err := window.ParseDays(w.Days)
		if err != nil {
			return nil, fmt.Errorf("stage %s: windows[%d].days: %w", s.Name, i, err)
		}
		start, end, err := window.ParseHours(w.Hours)
		if err != nil {
			return nil, fmt.Errorf("stage %s: windows[%d].hours: %w", s.Name, i, err)
		}
		cal.Weekly = append(cal.Weekly, window.Weekly{Days: days, Start: start, End: end})
	}
	for i, f := range s.Freezes {
		from, err := window.ParseMoment(f.From, zone)
		if err != nil {
			return nil, fmt.Errorf("stage %s: freezes[%d].from: %w", s.Name, i, err)
		}
		until, err := window.ParseMoment(f.Until, zone)
		if err != nil {
			return nil, fmt.Errorf("stage %s: freezes[%d].until: %w", s.Name, i, err)
		}
		cal.Freezes = append(cal.Freezes, window.Freeze{From: from, Until: until, Reason: f.Reason})
	}
	return cal, nil
}

// Zone is the stage's time zone (UTC when none is set, or it is unknown), for showing times.
func (s *Stage) Zone() *time.Location {
	if z, err := window.LoadZone(s.TimeZone); err == nil {
		return z
	}
	return time.UTC
}

// calendar checks a stage's time zone, windows, freezes and min_soak, each problem on its line.
func (v *validator) calendar(p string, st Stage) {
	zone, err := window.LoadZone(st.TimeZone)
	if err != nil {
		v.add(p+".time_zone", "%v", err)
		zone = nil // times in it cannot be read: their problems would only repeat this one
	}
	for i, w := range st.Windows {
		wp := fmt.Sprintf("%s.windows[%d]", p, i)
		if _, err := window.ParseDays(w.Days); err != nil {
			v.add(wp+".days", "%v", err)
		}
		if w.Hours == "" {
			v.add(wp+".hours", "required: when on those days, such as 09:00-16:00")
		} else if _, _, err := window.ParseHours(w.Hours); err != nil {
			v.add(wp+".hours", "%v", err)
		}
	}
	for i, f := range st.Freezes {
		fp := fmt.Sprintf("%s.freezes[%d]", p, i)
		var from, until time.Time
		var okFrom, okUntil bool
		for _, m := range []struct {
			field, value string
			t            *time.Time
			ok           *bool
		}{{"from", f.From, &from, &okFrom}, {"until", f.Until, &until, &okUntil}} {
			switch {
			case m.value == "":
				v.add(fp+"."+m.field, "required: a date such as 2025-12-22, or a date and time such as \"2025-12-22 18:00\"")
			case zone != nil:
				t, err := window.ParseMoment(m.value, zone)
				if err != nil {
					v.add(fp+"."+m.field, "%v", err)
				}
				*m.t, *m.ok = t, err == nil
			}
		}
		if okFrom && okUntil && !until.After(from) {
			v.add(fp+".until", "must be after from (%s), got %s", f.From, f.Until)
		}
		if f.Reason == "" {
			v.add(fp+".reason", "required: people read it when their deploy waits for the freeze to end")
		}
	}
	switch {
	case st.MinSoak < 0:
		v.add(p+".min_soak", "must not be negative, got %s", st.MinSoak)
	case st.MinSoak > 0 && len(v.c.NextStages(st.Name)) == 0:
		v.add(p+".min_soak", "no stage promotes from %s (promote_from), so there is no promotion for it to hold back", st.Name)
	}
}
