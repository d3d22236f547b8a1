package awstest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// apiError is an AWS error answer: the code the SDK maps to a typed error, its message, and
// the HTTP status (400 when zero).
type apiError struct {
	code, msg string
	status    int
}

// jsonService is what each awsJson service implements.
type jsonService interface {
	handle(op string, body []byte) (any, *apiError)
}

// serveJSON answers an awsJson1.1 request: checked against the model, signed, maybe throttled,
// then handled, and its answer checked against the model too.
func (e *Env) serveJSON(w http.ResponseWriter, r *http.Request, svc, op string, body []byte) {
	call := Call{Service: svc, Operation: op, Body: body}
	defer func() { e.record(call) }()
	fail := func(status int, code, msg string) {
		call.Status = status
		jsonError(w, status, code, msg)
	}
	m := e.models[svc]
	in := m.shapeOf(op, "input")
	if in == "" {
		// Notably GetSecretValue: the fake never answers a secret's value.
		e.problem("%s.%s is not an operation of the model subset", svc, op)
		fail(http.StatusBadRequest, "UnknownOperationException", op)
		return
	}
	key, role, ae := e.authenticate(r, body, svc)
	call.AccessKeyID, call.Role = key, role
	if ae != nil {
		if ae.unexpected {
			e.problem("%s.%s: %s: %s", svc, op, ae.code, ae.msg)
		}
		fail(ae.status, ae.code, ae.msg)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		e.problem("%s.%s: Content-Type %q, want application/x-amz-json-1.1", svc, op, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		e.problem("%s.%s: body is not JSON: %v", svc, op, err)
		fail(http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	if probs := m.validate(in, v, op); len(probs) > 0 {
		e.problem("%s.%s request: %s", svc, op, strings.Join(probs, "; "))
		fail(http.StatusBadRequest, "ValidationException", strings.Join(probs, "; "))
		return
	}
	if e.throttled(svc) {
		fail(http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	serverError := "InternalFailure"
	if svc == "ecr" {
		serverError = "ServerException" // ECR's own name for it, which its model gives every operation
	}
	before, after := e.faulty(op)
	if before {
		fail(http.StatusInternalServerError, serverError, "We encountered an internal error. Please try again.")
		return
	}
	var out any
	var err *apiError
	if svc == "ecr" {
		out, err = e.ECR.handle(op, body, accountOf(role)) // who may reach a repository depends on the caller's account
	} else {
		services := map[string]jsonService{"codebuild": e.CodeBuild, "secretsmanager": e.Secrets}
		out, err = services[svc].handle(op, body)
	}
	if err == nil && after {
		// The work is done, but the answer is lost on its way back: the caller cannot know.
		fail(http.StatusInternalServerError, serverError, "We encountered an internal error. Please try again.")
		return
	}
	if err != nil {
		if !m.errorAllowed(op, err.code) {
			e.problem("%s.%s answered error %s, which the model does not give it", svc, op, err.code)
		}
		if _, ok := m.Shapes[err.code]; ok {
			body := map[string]any{"__type": err.code, "message": err.msg}
			if probs := m.validate(err.code, body, op+" error"); len(probs) > 0 {
				e.problem("%s.%s error: %s", svc, op, strings.Join(probs, "; "))
			}
		}
		status := http.StatusBadRequest
		if err.status != 0 {
			status = err.status
		}
		fail(status, err.code, err.msg)
		return
	}
	b, merr := json.Marshal(out)
	if merr != nil {
		e.problem("%s.%s: encoding the answer: %v", svc, op, merr)
		fail(http.StatusInternalServerError, "InternalFailure", merr.Error())
		return
	}
	var check any
	_ = json.Unmarshal(b, &check)
	if probs := m.validate(m.shapeOf(op, "output"), check, op+" response"); len(probs) > 0 {
		e.problem("%s.%s response: %s", svc, op, strings.Join(probs, "; "))
	}
	call.Status = http.StatusOK
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", requestID())
	_, _ = w.Write(b)
}

// jsonError writes an awsJson error: the code in __type (and x-amzn-ErrorType), as the SDK's
// deserializers read it.
func jsonError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-ErrorType", code)
	w.Header().Set("x-amzn-RequestId", requestID())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
