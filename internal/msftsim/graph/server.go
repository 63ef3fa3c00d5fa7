// Package graph simulates the Microsoft Graph v1.0 endpoints dzconnect
// uses, authorized by the roles in the caller's access token, answering
// errors in Graph's OData error shape.
package graph

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/entra"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// Server serves /v1.0.
type Server struct {
	Dir      *directory.Directory
	Faults   *faults.Injector
	Verifier *entra.Verifier
	BaseURL  func() string
}

// call is one Graph request being served.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	s      *Server
	segs   []string // path segments after /v1.0, unescaped
	key    map[string]string
	claims *entra.Claims
	tenant string
	info   *observe.Info
	count  bool // the list answers @odata.count ($count=true, advanced query)
}

// route is a matched Graph operation.
type route struct {
	name  string
	roles []string // any of these roles authorizes the call
	serve func(c *call)
}

// ServeHTTP handles every request under /v1.0/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r, s: s, info: observe.InfoFrom(r.Context())}
	if rid := r.Header.Get("client-request-id"); rid != "" {
		w.Header().Set("client-request-id", rid)
	}
	w.Header().Set("request-id", s.Dir.NewID())
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/v1.0")
	for _, p := range strings.Split(strings.Trim(raw, "/"), "/") {
		u, err := url.PathUnescape(p)
		if err != nil {
			u = p
		}
		c.segs = append(c.segs, u)
	}
	if len(c.segs) > 0 {
		c.segs[0], c.key = parseKey(c.segs[0])
	}
	rt := s.match(c)
	if rt == nil {
		c.info.Route = "graph.unknown"
		c.fail(400, "BadRequest", "Resource not found for the segment '"+c.lastSeg()+"'.")
		return
	}
	c.info.Route = rt.name
	if !c.authenticate() {
		return
	}
	d := s.Faults.Apply(r.Context(), rt.name, c.tenant, c.claims.AppID)
	if d.LimitPercentage > 0 {
		w.Header().Set("x-ms-throttle-limit-percentage", strconv.FormatFloat(min(d.LimitPercentage, 1.8), 'f', 1, 64))
		w.Header().Set("x-ms-throttle-scope", "Tenant_Application/ReadWrite/"+c.tenant+"/"+c.claims.AppID)
	}
	if d.Status != 0 {
		c.info.Fault = d.Kind
		if d.Status == 429 {
			w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
			w.Header().Set("x-ms-throttle-scope", "Tenant_Application/ReadWrite/"+c.tenant+"/"+c.claims.AppID)
			if d.LimitPercentage == 0 {
				w.Header().Set("x-ms-throttle-limit-percentage", "1.0")
			}
			// Graph's documented throttling body: innerError also carries
			// code, message and status [G-throttling].
			c.failInner(429, "TooManyRequests", "Please retry again later.",
				map[string]any{"code": "429", "message": "Please retry after", "status": "429"})
			return
		}
		if d.Status == 503 {
			w.Header().Set("Retry-After", "1")
		}
		c.fail(d.Status, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later.")
		return
	}
	if len(rt.roles) > 0 && !c.claims.HasRole(rt.roles...) {
		c.fail(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	if status, lost := s.Faults.LoseResponse(rt.name, c.tenant); lost {
		// The request is served (a write lands), its answer discarded.
		c.info.Fault = faults.KindLostResponse
		served := *c
		served.w = discardWriter{h: http.Header{}}
		rt.serve(&served)
		c.fail(status, "UnknownError", "The request timed out before a response was received.")
		return
	}
	rt.serve(c)
}

func (c *call) lastSeg() string {
	if len(c.segs) == 0 {
		return ""
	}
	return c.segs[len(c.segs)-1]
}

// parseKey splits "applications(appId='x')" into the name and key values;
// "(id)" or "('id')" is the id key.
func parseKey(seg string) (string, map[string]string) {
	i := strings.IndexByte(seg, '(')
	if i < 0 || !strings.HasSuffix(seg, ")") {
		return seg, nil
	}
	name, inner := seg[:i], seg[i+1:len(seg)-1]
	key := map[string]string{}
	for _, part := range strings.Split(inner, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			k, v = "id", part
		}
		key[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), "'")
	}
	return name, key
}

func (c *call) authenticate() bool {
	authz := c.r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || raw == "" {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		c.fail(401, "InvalidAuthenticationToken", "Access token is empty.")
		return false
	}
	cl, err := c.s.Verifier.Verify(raw, c.s.Dir.Clock().Now())
	switch {
	case errors.Is(err, entra.ErrExpired):
		c.fail(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return false
	case err != nil:
		c.fail(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid signature or malformed token.")
		return false
	}
	if app, _ := directory.ResourceAppIDForAudience(cl.Aud); app != directory.GraphAppID {
		c.fail(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return false
	}
	if !c.s.Dir.TenantExists(cl.Tid) {
		c.fail(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer or signature.")
		return false
	}
	c.claims, c.tenant = cl, cl.Tid
	c.info.Tenant, c.info.Client = cl.Tid, cl.AppID
	return true
}

func (c *call) caller() directory.Caller {
	return directory.Caller{SPID: c.claims.Oid,
		OwnedByOnly: c.claims.HasRole("Application.ReadWrite.OwnedBy") && !c.claims.HasRole("Application.ReadWrite.All", "Directory.ReadWrite.All")}
}

// fail writes Graph's error shape.
func (c *call) fail(status int, code, msg string, details ...directory.ErrorDetail) {
	c.failInner(status, code, msg, nil, details...)
}

// failInner writes Graph's error shape with extra innerError members.
func (c *call) failInner(status int, code, msg string, inner map[string]any, details ...directory.ErrorDetail) {
	ie := map[string]any{
		"date":              c.s.Dir.Clock().Now().Format("2006-01-02T15:04:05"),
		"request-id":        c.w.Header().Get("request-id"),
		"client-request-id": c.r.Header.Get("client-request-id"),
	}
	for k, v := range inner {
		ie[k] = v
	}
	e := map[string]any{"code": code, "message": msg, "innerError": ie}
	if len(details) > 0 {
		e["details"] = details
	}
	c.json(status, map[string]any{"error": e})
}

// failErr writes a directory error (or a 500 for anything else).
func (c *call) failErr(err error) {
	var de *directory.Error
	if errors.As(err, &de) {
		c.fail(de.Status, de.Code, de.Message, de.Details...)
		return
	}
	c.fail(500, "generalException", err.Error())
}

func (c *call) json(status int, v any) {
	c.w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	c.w.WriteHeader(status)
	enc := json.NewEncoder(c.w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (c *call) noContent() { c.w.WriteHeader(http.StatusNoContent) }

// readBody decodes the (possibly gzip-compressed: kiota compresses request
// bodies) JSON body into v.
func (c *call) readBody(v any) bool {
	var rd io.Reader = c.r.Body
	if strings.EqualFold(c.r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(c.r.Body)
		if err != nil {
			c.fail(400, "BadRequest", "Invalid gzip request body.")
			return false
		}
		defer gz.Close()
		rd = gz
	}
	if err := json.NewDecoder(io.LimitReader(rd, 4<<20)).Decode(v); err != nil {
		c.fail(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return false
	}
	return true
}

func (c *call) context(fragment string) string { return c.base() + "/v1.0/$metadata#" + fragment }

// base is the URL the client reached the simulator at, so links (nextLink)
// stay on the host name the client uses and trusts.
func (c *call) base() string {
	if c.r.Host != "" {
		return "https://" + c.r.Host
	}
	return c.s.BaseURL()
}

func graphTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// discardWriter swallows an answer (see faults.LostResponses).
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}
