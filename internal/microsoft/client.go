package microsoft

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// Client opens sessions and directories against Microsoft. It is safe for
// concurrent use; all sessions share one HTTP transport (connections are
// reused), never a credential or a token.
type Client struct {
	cfg     Config
	clouds  map[string]Endpoints
	http    *http.Client // plain calls and azidentity
	graphHC *http.Client // msgraph-sdk-go middleware over the same transport
}

// New builds a Client. It fails on unusable endpoints or CA files.
func New(cfg Config) (*Client, error) {
	if cfg.Clouds == nil {
		cfg.Clouds = DefaultClouds()
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = DefaultHTTPTimeout
	}
	if cfg.MaxThrottleWait <= 0 {
		cfg.MaxThrottleWait = 60 * time.Second
	}
	if cfg.MaxTransientRetries == 0 {
		cfg.MaxTransientRetries = 2
	} else if cfg.MaxTransientRetries < 0 {
		cfg.MaxTransientRetries = 0
	}
	if cfg.MaxInFlightPerCaller <= 0 {
		cfg.MaxInFlightPerCaller = 1
	}
	if cfg.TransientBackoff <= 0 {
		cfg.TransientBackoff = 200 * time.Millisecond
	}
	clouds := make(map[string]Endpoints, len(cfg.Clouds))
	for name, ep := range cfg.Clouds {
		if err := ep.validate(name); err != nil {
			return nil, err
		}
		ep.Audiences = normalizeAudiences(ep.Audiences)
		clouds[name] = ep
	}
	pool, err := caPool(cfg, clouds)
	if err != nil {
		return nil, err
	}
	if cfg.ConnsPerHost <= 0 {
		cfg.ConnsPerHost = 4
	}
	base := newConnPool(cfg.ConnsPerHost, func() *http.Transport {
		return &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			// No ResponseHeaderTimeout: each attempt's deadline
			// (retryTransport.timeout) covers the headers and the body.
			ExpectContinueTimeout: time.Second,
		}
	})
	rt := &retryTransport{next: tracingTransport(base, clouds), gate: newThrottleGate(), slots: newCallerSlots(cfg.MaxInFlightPerCaller), meta: newMetadataCache(30*time.Minute, 10000), maxWait: cfg.MaxThrottleWait, maxRetries: cfg.MaxTransientRetries,
		backoff: cfg.TransientBackoff, retryMargin: 20 * time.Millisecond, timeout: cfg.HTTPTimeout}
	// No http.Client.Timeout: it would cut across Retry-After waits; each
	// exchange (attempt) is bounded by the transport's own deadline, body
	// included (cfg.HTTPTimeout), the whole call by the context.
	c := &Client{cfg: cfg, clouds: clouds, http: &http.Client{Transport: rt}}

	opts := msgraphsdk.GetDefaultClientOptions()
	var mws []khttp.Middleware
	for _, m := range msgraphcore.GetDefaultMiddlewaresWithOptions(&opts) {
		switch m.(type) {
		case *khttp.RetryHandler, khttp.RetryHandler:
			// Removed: it truncates fractional Retry-After and retries on
			// its own; retryTransport does it for every API.
			continue
		case *khttp.CompressionHandler:
			// Removed: it gzips every request body (a new gzip writer per
			// request: about a millisecond of CPU for a body of a few
			// hundred bytes, on the provisioning's critical path for each
			// write) and, on a 415, sends the request again uncompressed,
			// a resend the transport's retry rules do not see.
			continue
		}
		mws = append(mws, m)
	}
	c.graphHC = &http.Client{Transport: khttp.NewCustomTransportWithParentTransport(rt, mws...)}
	return c, nil
}

func normalizeAudiences(a map[string]string) map[string]string {
	out := make(map[string]string, len(a))
	for k, v := range a {
		out[normalizeAPI(k)] = v
	}
	return out
}

// caPool is the system pool (or cfg.CAPool) plus the extra CA files.
func caPool(cfg Config, clouds map[string]Endpoints) (*x509.CertPool, error) {
	files := []string{}
	if cfg.ExtraCAFile != "" {
		files = append(files, cfg.ExtraCAFile)
	}
	for _, ep := range clouds {
		if ep.CAFile != "" {
			files = append(files, ep.CAFile)
		}
	}
	pool := cfg.CAPool
	if pool == nil && len(files) == 0 {
		return nil, nil // the system pool
	}
	if pool == nil {
		sys, err := x509.SystemCertPool()
		if err != nil || sys == nil {
			sys = x509.NewCertPool()
		}
		pool = sys
	} else {
		pool = pool.Clone()
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f] {
			continue
		}
		seen[f] = true
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", f)
		}
	}
	return pool, nil
}

// Endpoints returns the endpoints of a cloud ("" is global).
func (c *Client) Endpoints(cloudName string) (Endpoints, bool) {
	if cloudName == "" {
		cloudName = CloudGlobal
	}
	ep, ok := c.clouds[cloudName]
	return ep, ok
}

// microsoftAuthorityHosts are Microsoft's own login hosts, for which MSAL's
// instance discovery stays on.
var microsoftAuthorityHosts = map[string]bool{
	"login.microsoftonline.com": true, "login.microsoft.com": true, "login.windows.net": true, "sts.windows.net": true,
	"login.microsoftonline.us": true, "login.usgovcloudapi.net": true, "login.chinacloudapi.cn": true,
	"login.partner.microsoftonline.cn": true, "login.microsoftonline.de": true,
}

// NewSession opens a session for one application's credentials: a new
// azidentity credential (client secret, or a certificate's client
// assertion), so no token is shared with any other session.
func (c *Client) NewSession(cr Credentials) (*Session, error) {
	ep, ok := c.Endpoints(cr.Cloud)
	if !ok {
		return nil, &mserr.Error{Service: "entra", Operation: "new session", Code: "UnknownCloud", Class: mserr.ClassNotConfigured,
			Message: fmt.Sprintf("no endpoints configured for cloud %q", cr.Cloud),
			Remedy:  "Set the tenant's cloud to one of global, us-gov-gcc, us-gov-gcc-high, us-gov-dod, china."}
	}
	u, err := url.Parse(ep.Authority)
	if err != nil {
		return nil, fmt.Errorf("authority %q: %w", ep.Authority, err)
	}
	copts := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: ep.Authority},
		Transport: c.http,
		// retryTransport retries; azcore's policy would add attempts of its own.
		Retry: policy.RetryOptions{MaxRetries: -1},
	}
	discovery := !microsoftAuthorityHosts[strings.ToLower(u.Hostname())]
	var cred azcore.TokenCredential
	if cr.Certificate != nil {
		cred, err = azidentity.NewClientCertificateCredential(cr.TenantID, cr.ClientID, cr.Certificate.Chain, cr.Certificate.Key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: copts, DisableInstanceDiscovery: discovery})
	} else if cr.Secret != "" {
		// The client credentials grant made here (secretcred.go): no MSAL
		// client per session, still a new token per session.
		var sc *secretCredential
		if sc, err = newSecretCredential(c.http, ep.Authority, cr.TenantID, cr.ClientID, cr.Secret); err != nil {
			return nil, err
		}
		cred = sc
	} else {
		cred, err = azidentity.NewClientSecretCredential(cr.TenantID, cr.ClientID, cr.Secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: copts, DisableInstanceDiscovery: discovery})
	}
	if err != nil {
		// azidentity checks the tenant ID's characters and the authority URL;
		// its message never holds the secret.
		if strings.Contains(strings.ToLower(err.Error()), "tenantid") {
			return nil, &mserr.Error{Service: "entra", Operation: "new session", Code: "AADSTS900023", Class: mserr.ClassTenantNotFound,
				Message: firstLine(err.Error()), Remedy: "The Directory (tenant) ID is malformed: enter the tenant's GUID or its verified domain."}
		}
		return nil, &mserr.Error{Service: "entra", Operation: "new session", Code: "InvalidConfiguration", Class: mserr.ClassNotConfigured,
			Message: firstLine(err.Error()), Remedy: "dzconnect's Microsoft endpoint configuration for this cloud, or the certificate credential, is invalid."}
	}
	return &Session{c: c, ep: ep, cred: cred, org: cr.Org, tenant: cr.TenantID, clientID: cr.ClientID, authorityHost: u.Host}, nil
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func (c *Client) gate() *throttleGate { return c.http.Transport.(*retryTransport).gate }

// CloseIdleConnections closes the shared transport's idle connections (at
// shutdown, or in tests before stopping a simulator).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
