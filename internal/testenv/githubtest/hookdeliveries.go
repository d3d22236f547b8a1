package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The App's delivery log, as GitHub keeps it for an App's webhook: every attempt, newest first,
// with its outcome (GET /app/hook/deliveries, cursor paging), one attempt with its request and
// answer (GET /app/hook/deliveries/{delivery_id}), and redelivery of an attempt (POST
// .../{delivery_id}/attempts), which GitHub never does by itself. All three take the App's JWT.

// hookDeliveryPages is GitHub's default page size for the delivery log; per_page may ask for up
// to 100.
const hookDeliveryPages = 30

// cursorPrefix starts the cursors of the delivery log's Link header, as GitHub's ("v1_…") do.
const cursorPrefix = "v1_"

// listHookDeliveries answers apps/list-webhook-deliveries: attempts newest first, a page at a
// time; the Link header's next cursor names the last attempt of the page.
func (s *Server) listHookDeliveries(c *call) (int, any) {
	q := c.r.URL.Query()
	per := hookDeliveryPages
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return http.StatusBadRequest, message("per_page must be a positive integer")
		}
		per = min(n, 100)
	}
	before := int64(-1) // -1: from the newest
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(v, cursorPrefix), 10, 64)
		if !strings.HasPrefix(v, cursorPrefix) || err != nil {
			return http.StatusBadRequest, message("Invalid cursor")
		}
		before = n
	}
	o := s.out
	o.mu.Lock()
	defer o.mu.Unlock()
	items := []any{}
	more := false
	for i := len(o.log) - 1; i >= 0; i-- {
		d := o.log[i]
		if before >= 0 && d.AttemptID >= before {
			continue
		}
		if len(items) == per {
			more = true
			break
		}
		items = append(items, hookDeliveryItem(d))
	}
	if more {
		last := items[len(items)-1].(map[string]any)["id"].(int64)
		c.header.Set("Link", fmt.Sprintf(`<%sapp/hook/deliveries?per_page=%d&cursor=%s%d>; rel="next"`, s.URL(), per, cursorPrefix, last))
	}
	return http.StatusOK, items
}

// getHookDelivery answers apps/get-webhook-delivery: one attempt, with what was sent and what
// came back.
func (s *Server) getHookDelivery(c *call) (int, any) {
	o := s.out
	o.mu.Lock()
	defer o.mu.Unlock()
	d, ok := o.attemptLocked(c.id("delivery_id"))
	if !ok {
		return notFound()
	}
	m := hookDeliveryItem(d)
	var payload any
	if err := json.Unmarshal(d.Body, &payload); err != nil {
		payload = nil
	}
	var answered any
	if d.Status != 0 {
		answered = string(d.Response)
	}
	m["url"] = d.URL
	m["request"] = map[string]any{"headers": flatHeader(d.reqHeader), "payload": payload}
	m["response"] = map[string]any{"headers": flatHeader(d.respHeader), "payload": answered}
	return http.StatusOK, m
}

// redeliverHookDelivery answers apps/redeliver-webhook-delivery: the attempt's delivery is sent
// again (same guid and body) to the webhook's current URL and secret, once this call is answered.
func (s *Server) redeliverHookDelivery(c *call) (int, any) {
	o := s.out
	o.mu.Lock()
	defer o.mu.Unlock()
	d, ok := o.attemptLocked(c.id("delivery_id"))
	if !ok {
		return notFound()
	}
	if o.url == "" {
		return http.StatusUnprocessableEntity, message("The webhook has no URL to redeliver to")
	}
	o.enqueueLocked(Delivery{ID: d.ID, Event: d.Event, Action: d.Action, Body: d.Body, Redelivery: true}, c.answered)
	return http.StatusAccepted, map[string]any{}
}

// attemptLocked finds an attempt of the log by its id; the caller holds o.mu.
func (o *outbox) attemptLocked(id int64) (Delivery, bool) {
	for _, d := range o.log {
		if d.AttemptID == id {
			return d, true
		}
	}
	return Delivery{}, false
}

// hookDeliveryItem is an attempt as the delivery log lists it (hook-delivery-item).
func hookDeliveryItem(d Delivery) map[string]any {
	status := "OK"
	switch {
	case d.Status/100 == 2:
	case d.Status != 0:
		status = fmt.Sprintf("Invalid HTTP Response: %d", d.Status)
	case d.timedOut:
		status = "timed out"
	default:
		status = "failed to connect to host"
	}
	return map[string]any{
		"id": d.AttemptID, "guid": d.ID, "delivered_at": stamp(d.DeliveredAt), "redelivery": d.Redelivery,
		"duration": d.Took.Seconds(), "status": status, "status_code": d.Status, "event": d.Event,
		"action": orNil(d.Action), "installation_id": nilIfZero(d.installationID), "repository_id": nilIfZero(d.repositoryID),
		"throttled_at": nil,
	}
}

func nilIfZero(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// flatHeader renders headers as the delivery log does: one string per name.
func flatHeader(h http.Header) map[string]any {
	out := map[string]any{}
	for k, v := range h {
		out[k] = strings.Join(v, ", ")
	}
	return out
}
