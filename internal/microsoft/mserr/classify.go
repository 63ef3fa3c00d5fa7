package mserr

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// Facts are what a failed Microsoft call said, before classification.
type Facts struct {
	Service   string
	Operation string
	Status    int
	// Codes are Microsoft's codes, most specific last is fine: Entra's
	// error_codes as "AADSTS<n>", or error.code then inner/detail codes.
	Codes   []string
	Message string
	Header  http.Header // for Retry-After; may be nil
}

// FromFacts classifies facts with the table.
func FromFacts(f Facts) *Error {
	e := &Error{Service: f.Service, Operation: f.Operation, Status: f.Status, Message: firstLine(f.Message)}
	if len(f.Codes) > 0 {
		e.Code = f.Codes[0]
	}
	msg := strings.ToLower(f.Message)
	if i := match(f.Service, f.Status, f.Codes, msg); i >= 0 {
		r := table[i]
		e.Class, e.Lag, e.Remedy = r.class, r.lag, r.remedy
		for _, c := range f.Codes {
			if strings.EqualFold(c, r.code) {
				e.Code = c // report the code that decided
			}
		}
	} else {
		e.Class, e.Remedy, e.Lag = byStatus(f.Status)
	}
	if e.Class == ClassThrottled || f.Status == http.StatusServiceUnavailable {
		e.RetryAfter = RetryAfter(f.Header, time.Now())
	}
	return e
}

// match returns the index of the first rule that matches, or -1.
func match(service string, status int, codes []string, msg string) int {
	for i, r := range table {
		if r.service != "" && r.service != service || r.status != 0 && r.status != status {
			continue
		}
		if r.code != "" && !hasCode(codes, r.code) {
			continue
		}
		if r.msg != nil && !containsAny(msg, r.msg) {
			continue
		}
		return i
	}
	return -1
}

func hasCode(codes []string, want string) bool {
	for _, c := range codes {
		if strings.EqualFold(c, want) {
			return true
		}
	}
	return false
}

func containsAny(s string, frags []string) bool {
	for _, f := range frags {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

// IsReplicationLag reports whether err is an answer Microsoft documents as
// possibly "not replicated yet" (microsoft.md section 5): a new secret or
// app rejected by Entra (AADSTS7000215 / 700016), a new object not found,
// PrincipalNotFound, a role assignment not yet effective, ... The caller
// decides from the timing of its last change whether it is lag.
func IsReplicationLag(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Lag || e.Class == ClassNotReplicated)
}

// Classify turns the error of a Microsoft call into an *Error: azidentity's
// AuthenticationFailedError (Entra's error_codes), msgraph-sdk-go's
// ODataError, a kiota ApiError, a *ResponseError from a plain HTTP call,
// a timeout or a network failure. service is "entra", "graph", "arm",
// "loganalytics", "defender" or "cloudapps"; operation says what dzconnect
// was doing. An *Error passes through (its empty labels filled in).
func Classify(service, operation string, err error) *Error {
	if err == nil {
		return nil
	}
	var me *Error
	if errors.As(err, &me) {
		out := *me
		if out.Service == "" {
			out.Service = service
		}
		if out.Operation == "" {
			out.Operation = operation
		}
		return &out
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		return classifyEntra(service, operation, afe)
	}
	var are *azcore.ResponseError
	if errors.As(err, &are) {
		// The Azure SDK modules (armauthorization, azquery): the body
		// azcore buffered holds the {"error":{...}} object.
		var body []byte
		var h http.Header
		if are.RawResponse != nil {
			body, _ = runtime.Payload(are.RawResponse)
			h = are.RawResponse.Header
		}
		return FromResponse(service, operation, are.StatusCode, h, body)
	}
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		f := Facts{Service: service, Operation: operation, Status: oe.ResponseStatusCode, Header: kiotaHeaders(oe.ResponseHeaders)}
		if me := oe.GetErrorEscaped(); me != nil {
			f.Codes, f.Message = odataCodes(me)
		}
		if f.Message == "" {
			f.Message = oe.Error()
		}
		return FromFacts(f)
	}
	var re *ResponseError
	if errors.As(err, &re) {
		return FromResponse(service, operation, re.Status, re.Header, re.Body)
	}
	var ae abs.ApiErrorable
	if errors.As(err, &ae) {
		return FromFacts(Facts{Service: service, Operation: operation, Status: ae.GetStatusCode(),
			Header: kiotaHeaders(ae.GetResponseHeaders()), Message: err.Error()})
	}
	return classifyTransport(service, operation, err)
}

func classifyEntra(service, operation string, afe *azidentity.AuthenticationFailedError) *Error {
	if afe.RawResponse == nil {
		// No answer from Entra (MSAL failed before or without one). Its
		// text only (classifyTransport keeps the first line, or finds a
		// TimeoutError's text on a later one).
		return classifyTransport(service, operation, errors.New(afe.Error()))
	}
	resp := afe.RawResponse
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body = io.NopCloser(bytes.NewReader(body)) // others may read it too
	}
	return FromResponse(service, operation, resp.StatusCode, resp.Header, body)
}

// ResponseError is a non-2xx answer to a plain net/http call (ARM, Log
// Analytics, Defender, Cloud Apps). Body is the answer's body, capped.
type ResponseError struct {
	Status int
	Header http.Header
	Body   []byte
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, firstLine(string(e.Body)))
}

// FromResponse classifies an HTTP answer by its body: Entra's
// {"error_codes":[...],"error_description"}, or {"error":{"code","message",
// "innererror"/"innerError","details"}} (Graph, ARM, Log Analytics,
// Defender), falling back on the status.
func FromResponse(service, operation string, status int, header http.Header, body []byte) *Error {
	f := Facts{Service: service, Operation: operation, Status: status, Header: header}
	var b struct {
		Error      json.RawMessage `json:"error"`
		ErrorCodes []int64         `json:"error_codes"`
		ErrorDesc  string          `json:"error_description"`
		Message    string          `json:"message"`
		Code       string          `json:"code"`
	}
	if json.Unmarshal(body, &b) == nil {
		switch {
		case len(b.ErrorCodes) > 0:
			for _, c := range b.ErrorCodes {
				f.Codes = append(f.Codes, "AADSTS"+strconv.FormatInt(c, 10))
			}
			f.Message = entraDescription(b.ErrorDesc)
		case len(b.Error) > 0 && b.Error[0] == '{':
			var oe odataBody
			_ = json.Unmarshal(b.Error, &oe)
			f.Codes, f.Message = oe.codes(nil), oe.Message
		case len(b.Error) > 0 && b.Error[0] == '"':
			// OAuth error without error_codes: {"error":"invalid_client","error_description":...}
			var s string
			_ = json.Unmarshal(b.Error, &s)
			f.Codes, f.Message = []string{s}, entraDescription(b.ErrorDesc)
		case b.Code != "":
			f.Codes, f.Message = []string{b.Code}, b.Message
		}
	}
	if f.Message == "" && len(body) > 0 && len(f.Codes) == 0 && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("<")) {
		f.Message = string(body)
	}
	if f.Message == "" {
		f.Message = http.StatusText(status)
	}
	return FromFacts(f)
}

// odataBody is the {"code","message","innerError","details"} error object.
type odataBody struct {
	Code       string      `json:"code"`
	Message    string      `json:"message"`
	InnerError *odataBody  `json:"innerError"`
	Innererror *odataBody  `json:"innererror"`
	Details    []odataBody `json:"details"`
}

func (o *odataBody) codes(acc []string) []string {
	if o.Code != "" {
		acc = append(acc, o.Code)
	}
	for _, in := range []*odataBody{o.InnerError, o.Innererror} {
		if in != nil {
			acc = in.codes(acc)
		}
	}
	for i := range o.Details {
		acc = o.Details[i].codes(acc)
	}
	return acc
}

func odataCodes(me odataerrors.MainErrorable) ([]string, string) {
	var codes []string
	msg := ""
	if c := me.GetCode(); c != nil && *c != "" {
		codes = append(codes, *c)
	}
	if m := me.GetMessage(); m != nil {
		msg = *m
	}
	for _, d := range me.GetDetails() {
		if c := d.GetCode(); c != nil && *c != "" {
			codes = append(codes, *c)
		}
	}
	if in := me.GetInnerError(); in != nil {
		switch c := in.GetAdditionalData()["code"].(type) {
		case *string:
			if c != nil && *c != "" {
				codes = append(codes, *c)
			}
		case string:
			if c != "" {
				codes = append(codes, c)
			}
		}
	}
	return codes, msg
}

// entraDescription drops the "AADSTSnnn: " prefix and the trace, correlation
// and timestamp trailer from an Entra error_description.
func entraDescription(d string) string {
	d = firstLine(d)
	if i := strings.Index(d, ": "); i > 0 && strings.HasPrefix(d, "AADSTS") {
		d = d[i+2:]
	}
	if i := strings.Index(d, " Trace ID:"); i >= 0 {
		d = d[:i]
	}
	return strings.TrimSpace(d)
}

func kiotaHeaders(h *abs.ResponseHeaders) http.Header {
	if h == nil {
		return nil
	}
	out := http.Header{}
	for _, k := range h.ListKeys() {
		for _, v := range h.Get(k) {
			out.Add(k, v)
		}
	}
	return out
}

func classifyTransport(service, operation string, err error) *Error {
	e := &Error{Service: service, Operation: operation, Message: firstLine(err.Error())}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var tv *tls.CertificateVerificationError
	var ne net.Error
	var te *TimeoutError
	switch {
	case errors.As(err, &te):
		e.Class, e.Code, e.Message, e.Remedy = ClassTransient, "Timeout", te.Error(), timeoutRemedy
	case strings.Contains(err.Error(), timeoutText):
		// The same, through an SDK that kept only the text (azidentity
		// wraps MSAL's transport errors in a message, on a later line).
		msg := err.Error()[strings.Index(err.Error(), timeoutText):]
		if i := strings.Index(msg, timeoutFlag); i >= 0 {
			msg = msg[:i+len(timeoutFlag)]
		}
		e.Class, e.Code, e.Message, e.Remedy = ClassTransient, "Timeout", msg, timeoutRemedy
	case errors.Is(err, context.DeadlineExceeded):
		e.Class, e.Code, e.Remedy = ClassTransient, "Timeout", "Microsoft did not answer in time; dzconnect will check again later."
	case errors.Is(err, context.Canceled):
		e.Class, e.Code, e.Remedy = ClassTransient, "Canceled", "The check was canceled before Microsoft answered."
	case errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci), errors.As(err, &tv):
		e.Class, e.Code = ClassNotConfigured, "TLS"
		e.Remedy = "dzconnect does not trust the endpoint's TLS certificate: check the configured endpoints and extra CA bundle."
	case errors.As(err, &ne):
		e.Class, e.Code, e.Remedy = ClassTransient, "Network", "Microsoft could not be reached; dzconnect will check again later."
	default:
		e.Class, e.Remedy = ClassUnknown, "An unexpected failure talking to Microsoft; contact Dropzone support with the error."
	}
	return e
}

// RetryAfter reads how long Microsoft asks a client to wait: the longest
// of the retry-after-ms / x-ms-retry-after-ms headers (milliseconds) and
// Retry-After in (possibly fractional) seconds or as an HTTP date (measured
// from the response's Date header when present, so a fast local clock does
// not shorten it), rounded up. 0 when absent or unparsable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	var wait time.Duration
	for _, k := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
				wait = max(wait, time.Duration(ms*float64(time.Millisecond)))
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return wait
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 {
			wait = max(wait, time.Duration(s*float64(time.Second)))
		}
		return wait
	}
	if t, err := http.ParseTime(v); err == nil {
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			now = d
		}
		if d := t.Sub(now); d > 0 {
			// HTTP dates have whole seconds: round up so we never come back early.
			wait = max(wait, d.Truncate(time.Second)+time.Second)
		}
	}
	return wait
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	const max = 500
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

// TimeoutError is one HTTP exchange with Microsoft (connecting, sending,
// the answer's headers and its body) that did not finish within the
// configured deadline (--microsoft-timeout; internal/microsoft's
// transport): a stalled Microsoft. It classifies as ClassTransient with
// code "Timeout". Whether the request landed is unknown once any of it
// was sent (Sent): a non-idempotent write is then ambiguous, re-read
// before it is sent again (internal/microsoft, ambiguous).
type TimeoutError struct {
	After time.Duration
	Sent  bool
}

const (
	timeoutText   = "no answer from Microsoft within "
	timeoutFlag   = "(--microsoft-timeout)"
	timeoutRemedy = "Microsoft did not answer in time (a stalled or unreachable endpoint); dzconnect tries again later. Nothing to do unless it persists."
)

func (e *TimeoutError) Error() string { return timeoutText + e.After.String() + " " + timeoutFlag }
