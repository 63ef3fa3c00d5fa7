package microsoft_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// msftsim has no Defender for Cloud Apps API. Its probe runs against a
// small TLS fake for the data plane, with real tokens from msftsim, to pin
// the call shape: path, query, bearer token audience, and how the answers
// are read. (Graph's legacy /security/alerts is retired and no longer
// probed: a request to it fails this fake's default case.)
func TestCloudAppsAgainstFake(t *testing.T) {
	t.Parallel()
	var cloudAppsStatus atomic.Int32
	cloudAppsStatus.Store(200)
	fake := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aud := tokenAudience(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/alerts/" && r.URL.Query().Get("limit") == "1" && aud == "05a65629-4c1b-48c1-a78b-804c4abdd4af":
			if st := int(cloudAppsStatus.Load()); st != 200 {
				w.WriteHeader(st)
				_, _ = w.Write([]byte(`{"detail":"You do not have permission to perform this action."}`))
				return
			}
			_, _ = w.Write([]byte(`{"data":[],"hasNext":false,"max":0}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"BadRequest","message":"unexpected ` + r.Method + ` ` + r.URL.String() + ` aud ` + aud + `"}}`))
		}
	}))
	t.Cleanup(fake.Close)

	e := newEnv(t, func(c *microsoft.Config) {
		// The fake's certificate; New adds msftsim's caFile from the endpoints.
		pool := x509.NewCertPool()
		pool.AddCert(fake.Certificate())
		c.CAPool = pool
		g := c.Clouds[microsoft.CloudGlobal]
		g.Graph = fake.URL + "/v1.0"
		g.CloudApps = fake.URL
		c.Clouds[microsoft.CloudGlobal] = g
	})
	s := e.session(e.creds(e.fullApp()))
	if err := s.Probe(t.Context(), microsoft.Probe("graph-security-alerts-v1"), nil); err == nil {
		t.Fatal("the retired legacy alerts probe still runs")
	}
	if err := s.Probe(t.Context(), microsoft.ProbeCloudAppsAlerts, nil); err != nil {
		t.Fatalf("cloud apps: %v", err)
	}
	cloudAppsStatus.Store(403)
	_ = wantErr(t, s.Probe(t.Context(), microsoft.ProbeCloudAppsAlerts, nil), mserr.ClassPermissionMissing, "")

	// Without a Cloud Apps URL the probe says what to configure.
	e2 := newEnv(t)
	s = e2.session(e2.creds(e2.fullApp()))
	_ = wantErr(t, s.Probe(t.Context(), microsoft.ProbeCloudAppsAlerts, nil), mserr.ClassNotConfigured, "NoEndpoint")
}

// tokenAudience reads the aud claim of a bearer token (unverified).
func tokenAudience(authz string) string {
	raw, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok {
		return ""
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Aud string `json:"aud"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Aud
}
