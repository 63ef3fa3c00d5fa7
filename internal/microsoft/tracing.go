package microsoft

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/dropzoneai/dzconnect/internal/telemetry"
)

// Tracing (docs/observability.md): every HTTP exchange with Microsoft
// (Entra tokens and metadata through azidentity, Graph through
// msgraph-sdk-go, ARM through armauthorization, the Log Analytics and
// Defender probes) is one client span, made under retryTransport so that
// each attempt has its own: "<METHOD> <api>" ("POST entra token",
// "GET graph"), with the method, server address, path (no query string:
// Graph filters and, in general, anything after "?" stay out), status
// code, the attempt number (http.request.resend_count: 0 for the first),
// the client-request-id dzconnect sent and the request-id Microsoft
// answered with, which is what Microsoft support asks for. Headers
// (Authorization, client assertions) and bodies (token requests carry the
// client secret) are never recorded. No traceparent is sent: Microsoft
// is a third party and ignores it; client-request-id is the correlation
// it honours.

// Attribute keys of Microsoft client spans.
const (
	// AttrAPI is the API called: entra, graph, arm, loganalytics,
	// defender, cloudapps, or microsoft when the host is none of the
	// configured ones.
	AttrAPI = attribute.Key("microsoft.api")
	// AttrClientRequestID is the request's client-request-id (or azcore's
	// x-ms-client-request-id for ARM).
	AttrClientRequestID = attribute.Key("microsoft.client_request_id")
	// AttrRequestID is Microsoft's request-id (Graph) or x-ms-request-id
	// (Entra, ARM) answer header.
	AttrRequestID = attribute.Key("microsoft.request_id")
)

// clientRequestIDHeader is Graph's and Entra's correlation header; ARM's
// SDK (azcore) sends x-ms-client-request-id instead.
const clientRequestIDHeader = "client-request-id"

// withClientRequestID returns req carrying a client-request-id when it
// has neither that nor x-ms-client-request-id (the plain probes): set once
// per logical request, so every attempt of it carries the same one.
func withClientRequestID(req *http.Request) *http.Request {
	if req.Header.Get(clientRequestIDHeader) != "" || req.Header.Get("x-ms-client-request-id") != "" {
		return req
	}
	r := req.Clone(req.Context())
	r.Header.Set(clientRequestIDHeader, uuid.NewString())
	return r
}

type attemptKey struct{}

// withAttempt tells the tracing transport which attempt (0: the first) of
// a request this is.
func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// apiPrefix maps a configured endpoint (host and path prefix) to its API.
type apiPrefix struct {
	hostPath string // lower-case host + path, no trailing slash
	api      string
}

// apiPrefixes lists every cloud's endpoints, longest first, so that a
// simulator serving every API under one host still names them apart.
func apiPrefixes(clouds map[string]Endpoints) []apiPrefix {
	var out []apiPrefix
	add := func(raw, api string) {
		if raw == "" {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return
		}
		out = append(out, apiPrefix{hostPath: strings.ToLower(u.Host) + strings.TrimSuffix(u.Path, "/"), api: api})
	}
	for _, ep := range clouds {
		add(ep.Authority, "entra")
		add(ep.Graph, "graph")
		add(ep.ARM, "arm")
		add(ep.LogAnalytics, "loganalytics")
		add(ep.Defender, "defender")
		add(ep.CloudApps, "cloudapps")
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].hostPath) > len(out[j].hostPath) })
	return out
}

// apiOf names the API a request goes to.
func apiOf(prefixes []apiPrefix, u *url.URL) string {
	hp := strings.ToLower(u.Host) + u.Path
	for _, p := range prefixes {
		if hp == p.hostPath || strings.HasPrefix(hp, p.hostPath+"/") {
			return p.api
		}
	}
	return "microsoft"
}

// tracingTransport wraps next (the connection pool) with a client span per
// attempt.
func tracingTransport(next http.RoundTripper, clouds map[string]Endpoints) http.RoundTripper {
	prefixes := apiPrefixes(clouds)
	return &telemetry.ClientTransport{
		Next: next,
		Describe: func(req *http.Request) (string, []attribute.KeyValue) {
			api := apiOf(prefixes, req.URL)
			name := req.Method + " " + api
			if isTokenRequest(req) {
				name += " token"
			}
			attempt, _ := req.Context().Value(attemptKey{}).(int)
			attrs := []attribute.KeyValue{AttrAPI.String(api), attribute.Int("http.request.resend_count", attempt)}
			if id := req.Header.Get(clientRequestIDHeader); id != "" {
				attrs = append(attrs, AttrClientRequestID.String(bounded(id)))
			} else if id := req.Header.Get("x-ms-client-request-id"); id != "" {
				attrs = append(attrs, AttrClientRequestID.String(bounded(id)))
			}
			return name, attrs
		},
		Answer: func(resp *http.Response) []attribute.KeyValue {
			id := resp.Header.Get("request-id")
			if id == "" {
				id = resp.Header.Get("x-ms-request-id")
			}
			if id == "" {
				return nil
			}
			return []attribute.KeyValue{AttrRequestID.String(bounded(id))}
		},
	}
}

// bounded cuts a header value recorded on a span (IDs are GUIDs; anything
// longer is not one).
func bounded(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}
