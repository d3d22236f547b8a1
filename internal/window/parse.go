package window

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tues": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// ParseDays reads the days of a weekly window: "Mon-Thu", "Mon,Wed,Fri", "Fri-Mon" (a range
// may wrap round the week), "Mon-Wed,Fri", or "daily". Day names are English, three letters or
// whole, in any case.
func ParseDays(s string) ([7]bool, error) {
	var days [7]bool
	if strings.TrimSpace(s) == "" {
		return days, errors.New("required: the days it opens on, such as Mon-Thu or Mon,Wed,Fri")
	}
	if strings.EqualFold(strings.TrimSpace(s), "daily") {
		return [7]bool{true, true, true, true, true, true, true}, nil
	}
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, err := day(from)
		if err != nil {
			return days, err
		}
		b := a
		if isRange {
			if b, err = day(to); err != nil {
				return days, err
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func day(s string) (time.Weekday, error) {
	d, ok := dayNames[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return 0, fmt.Errorf("unknown day %q: want days such as Mon-Thu, Mon,Wed,Fri or daily", strings.TrimSpace(s))
	}
	return d, nil
}

// FormatDays spells days as ParseDays reads them, with ranges: "Mon-Thu", "Mon,Wed,Fri", "daily".
func FormatDays(days [7]bool) string {
	n := 0
	for _, on := range days {
		if on {
			n++
		}
	}
	if n == 7 {
		return "daily"
	}
	short := [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	var parts []string
	// Runs are read Monday first, as people write weeks; a run may wrap round to Sunday.
	order := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	for i := 0; i < len(order); {
		if !days[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && days[order[j+1]] {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, short[order[i]])
		case j == i+1:
			parts = append(parts, short[order[i]], short[order[j]])
		default:
			parts = append(parts, short[order[i]]+"-"+short[order[j]])
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// ParseHours reads a window's hours, "09:00-16:00", as minutes after midnight. "22:00-02:00"
// crosses midnight (it ends the next day); "00:00-24:00" is the whole day.
func ParseHours(s string) (start, end int, err error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("want HH:MM-HH:MM such as 09:00-16:00, got %q", s)
	}
	if start, err = minute(from, false); err == nil {
		end, err = minute(to, true)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("want HH:MM-HH:MM such as 09:00-16:00, got %q: %w", s, err)
	}
	if start == end {
		return 0, 0, fmt.Errorf("%q opens and closes at the same time: for the whole day write 00:00-24:00", s)
	}
	return start, end, nil
}

// minute reads "HH:MM"; 24:00 is allowed as an end.
func minute(s string, isEnd bool) (int, error) {
	s = strings.TrimSpace(s)
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 || err1 != nil || err2 != nil:
		return 0, fmt.Errorf("%q is no time of day", s)
	case isEnd && hh == 24 && mm == 0:
		return 1440, nil
	case hh < 0 || hh > 23 || mm < 0 || mm > 59:
		return 0, fmt.Errorf("%q is no time of day", s)
	}
	return hh*60 + mm, nil
}

// momentLayouts are how a freeze's start and end may be written: a date (its midnight), a date
// and time in the stage's zone, or an RFC 3339 time with its own offset.
var momentLayouts = []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

// ParseMoment reads a freeze's start or end: "2025-12-22" (midnight at the start of that day),
// "2025-12-22 18:00" in zone, or RFC 3339 ("2025-12-22T18:00:00+01:00").
func ParseMoment(s string, zone *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, l := range momentLayouts {
		if t, err := time.ParseInLocation(l, s, zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want a date such as 2025-12-22, a date and time such as \"2025-12-22 18:00\" (in the stage's time_zone), or RFC 3339, got %q", s)
}

// zones caches loaded time zones: loading one reads the zone database each time.
var zones sync.Map // name -> *time.Location

// LoadZone loads an IANA time zone ("Europe/Berlin"; "" is UTC), from the system's zone
// database or the copy embedded in the binary (cmd/stagecoach imports time/tzdata, so a static
// image without /usr/share/zoneinfo knows every zone).
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "Local" || strings.ContainsAny(name, " \\") || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		// Local is the host's zone, which moves with the machine; a path is no zone's name.
		return nil, fmt.Errorf("unknown time zone %q: want an IANA name such as Europe/Berlin or UTC", name)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: want an IANA name such as Europe/Berlin or UTC", name)
	}
	zones.Store(name, l)
	return l, nil
}
