// Package awsfake is a loopback stand-in for the three AWS services that
// drmfilter's AWS rollout calls (Systems Manager, EC2 and EC2 Auto Scaling),
// for tests only. It speaks each service's wire protocol, so the real SDK
// clients, serializers, retryers and waiters run against it unchanged:
//
//   - SSM is awsJson1_1: a POST whose X-Amz-Target header names the action
//     ("AmazonSSM.SendCommand") and whose body is JSON.
//   - EC2 is ec2Query and Auto Scaling is awsQuery: form-encoded POSTs with
//     Action and Version fields, answered with XML.
//
// Tests register a Handler per action, read back every Call made, and point
// an aws.Config at the server with Config (anonymous credentials, retries
// without delay) or with the SDK's own environment variables
// (AWS_ENDPOINT_URL).
package awsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Service names a faked service.
const (
	SSM         = "ssm"
	EC2         = "ec2"
	AutoScaling = "autoscaling"
)

// Call is one request the server received.
type Call struct {
	Service string
	Action  string
	// Header is the request's HTTP header (Authorization, X-Amz-Target).
	Header http.Header
	// Form holds the fields of an EC2 or Auto Scaling request.
	Form url.Values
	// JSON holds the decoded body of an SSM request.
	JSON map[string]any
}

// Response is what a Handler answers.
type Response struct {
	Status int // 200 when zero
	Body   string
}

// Handler answers one action. n counts the calls of that action so far,
// starting at 1. Handlers run one at a time, so they may keep state
// without locking.
type Handler func(c Call, n int) Response

// Server is the loopback fake. Its zero value is not usable: call New.
type Server struct {
	*httptest.Server
	t        testing.TB
	mu       sync.Mutex
	serving  sync.Mutex // held while a handler runs
	calls    []Call
	counts   map[string]int
	handlers map[string]Handler
}

// New starts a server that the test closes when it ends.
func New(t testing.TB) *Server {
	s := &Server{t: t, counts: map[string]int{}, handlers: map[string]Handler{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Handle registers h for action (for example "SendCommand" or
// "DescribeInstances"); action names do not collide across the three
// services.
func (s *Server) Handle(action string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[action] = h
}

// Calls returns the requests received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the requests for action, in order.
func (s *Server) CallsTo(action string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// Actions lists the action of every request, in order.
func (s *Server) Actions() []string {
	var out []string
	for _, c := range s.Calls() {
		out = append(out, c.Action)
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := Call{Header: r.Header.Clone()}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		c.Service = SSM
		_, c.Action, _ = strings.Cut(target, ".")
		if len(body) > 0 {
			if err := json.Unmarshal(body, &c.JSON); err != nil {
				s.t.Errorf("awsfake: %s: body is not JSON: %v", target, err)
			}
		}
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.t.Errorf("awsfake: form body: %v", err)
		}
		c.Form = form
		c.Action = form.Get("Action")
		switch form.Get("Version") {
		case "2016-11-15":
			c.Service = EC2
		case "2011-01-01":
			c.Service = AutoScaling
		default:
			s.t.Errorf("awsfake: %s: unknown API version %q", c.Action, form.Get("Version"))
		}
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.counts[c.Action]++
	n := s.counts[c.Action]
	h := s.handlers[c.Action]
	s.mu.Unlock()

	if h == nil {
		s.t.Errorf("awsfake: no handler for %s %s", c.Service, c.Action)
		h = func(c Call, _ int) Response { return Error(c, 400, "InvalidAction", "no fake for "+c.Action) }
	}
	s.serving.Lock()
	resp := h(c, n)
	s.serving.Unlock()
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	switch c.Service {
	case SSM:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	default:
		w.Header().Set("Content-Type", "text/xml")
	}
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("req-%d", n))
	w.WriteHeader(resp.Status)
	_, _ = io.WriteString(w, resp.Body)
}

// JSON answers an SSM action with v encoded as JSON.
func JSON(v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return Response{Body: string(b)}
}

// XML answers an EC2 or Auto Scaling action: inner is the content of the
// result element (for Auto Scaling, of <ActionResult>).
func XML(c Call, inner string) Response {
	if c.Service == EC2 {
		return Response{Body: fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<%[1]sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req</requestId>%[2]s</%[1]sResponse>`, c.Action, inner)}
	}
	return Response{Body: fmt.Sprintf(`<%[1]sResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><%[1]sResult>%[2]s</%[1]sResult><ResponseMetadata><RequestId>req</RequestId></ResponseMetadata></%[1]sResponse>`, c.Action, inner)}
}

// Error answers with the service's error shape: code (such as
// "ThrottlingException" or "AccessDeniedException") and message.
func Error(c Call, status int, code, message string) Response {
	switch c.Service {
	case SSM:
		return Response{Status: status, Body: fmt.Sprintf(`{"__type":%q,"message":%q}`, code, message)}
	case EC2:
		return Response{Status: status, Body: fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>req</RequestID></Response>`, xmlText(code), xmlText(message))}
	default:
		return Response{Status: status, Body: fmt.Sprintf(`<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req</RequestId></ErrorResponse>`, xmlText(code), xmlText(message))}
	}
}

func xmlText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
