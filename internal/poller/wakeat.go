package poller

import "time"

// WakeAt makes an idle worker look for work at t (the time a retry was scheduled for), so work
// due before the next tick runs when it is due, not up to a tick later.
func (p *Poller) WakeAt(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		p.Wake()
		return
	}
	time.AfterFunc(d, p.Wake)
}
