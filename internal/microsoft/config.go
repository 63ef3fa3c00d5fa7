package microsoft

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"strings"
	"time"
)

// The cloud slugs (tenant.Cloud).
const (
	CloudGlobal   = "global"
	CloudGCC      = "us-gov-gcc" // US Government GCC (moderate): global sign-in, Graph and ARM; Defender's GCC host
	CloudGCCHigh  = "us-gov-gcc-high"
	CloudDoD      = "us-gov-dod"
	CloudChina    = "china"
	allCloudsName = "*"
)

// DefaultHTTPTimeout is Config.HTTPTimeout's default.
const DefaultHTTPTimeout = 20 * time.Second

// Config configures a Client.
type Config struct {
	// Clouds maps a cloud slug to its endpoints; nil means DefaultClouds().
	// LoadEndpointsFile returns the defaults with a file's overrides.
	Clouds map[string]Endpoints
	// ExtraCAFile is a PEM bundle trusted in addition to the system pool
	// for every Microsoft call (e.g. msftsim's ca.pem). The CAFile of any
	// cloud's Endpoints is added too.
	ExtraCAFile string
	// CAPool, when set, is used instead of the system pool (plus the files).
	CAPool *x509.CertPool
	// HTTPTimeout bounds one HTTP exchange, each attempt on its own:
	// connecting, sending, the answer's headers and reading its body
	// (default DefaultHTTPTimeout; --microsoft-timeout). An exchange that
	// runs out of it fails with *mserr.TimeoutError (transient, code
	// Timeout) and is not sent again at once. Retry-After and backoff
	// waits between attempts are outside it; the caller's context bounds
	// the whole call, retries and waits included.
	HTTPTimeout time.Duration
	// MaxThrottleWait bounds the total time one Token or Probe call waits
	// on Retry-After answers (default 60s). A wait that does not fit in it,
	// or in the context's deadline, is not started: the call returns
	// mserr.ClassThrottled at once.
	MaxThrottleWait time.Duration
	// MaxTransientRetries bounds retries of 5xx answers and network errors
	// per HTTP request (default 2; negative: none).
	MaxTransientRetries int
	// MaxInFlightPerCaller bounds the requests of one caller (tenant and
	// client ID) in flight to one host at once (default 1): a 429 is then
	// known before the caller's next request leaves, so no request lands
	// inside a Retry-After window Microsoft has just opened. Sessions of
	// different integrations are not limited by it.
	MaxInFlightPerCaller int
	// ConnsPerHost is how many connections (HTTP transports) the
	// requests to one host are spread over, by caller (default 4): many
	// provisionings at once would otherwise share one HTTP/2 connection.
	ConnsPerHost int
	// TransientBackoff is the first retry's mean delay, doubled each retry
	// and jittered ±50% (default 200ms).
	TransientBackoff time.Duration
}

// Endpoints are one cloud's Microsoft endpoints. The JSON names match
// msftsim's endpoints.json, so that file can serve as the "*" entry as is.
type Endpoints struct {
	// Authority is the login authority (azidentity's
	// cloud.Configuration.ActiveDirectoryAuthorityHost), https, e.g.
	// "https://login.microsoftonline.com/".
	Authority string `json:"authority,omitempty"`
	// Graph is the Graph base URL including the version: "https://graph.microsoft.com/v1.0".
	Graph string `json:"graph,omitempty"`
	// ARM is the Resource Manager endpoint: "https://management.azure.com".
	ARM string `json:"arm,omitempty"`
	// LogAnalytics is the Log Analytics query API endpoint: "https://api.loganalytics.io".
	LogAnalytics string `json:"logAnalytics,omitempty"`
	// Defender is the Defender for Endpoint API endpoint: "https://api.security.microsoft.com"
	// (Microsoft's documented service base URI; the regional hosts
	// us., eu., uk., au., swa. and ina.api.security.microsoft.com may be
	// configured instead). Its token audience stays
	// "https://api.securitycenter.microsoft.com" (Audiences["defender"]).
	Defender string `json:"defender,omitempty"`
	// CloudApps is the Defender for Cloud Apps API URL. Microsoft gives
	// every tenant its own (https://<tenant>.<region>.portal.cloudappsecurity.com,
	// shown in Defender portal > Settings > Cloud Apps > About), so there is
	// no cloud-wide default; the probe needs it configured.
	CloudApps string `json:"cloudApps,omitempty"`
	// Audiences maps an API (API: "graph", "arm", "loganalytics",
	// "defender", "cloudapps", "exchange"; keys are case-insensitive so
	// msftsim's "logAnalytics" works) to the token resource; the scope
	// requested is resource + "/.default".
	Audiences map[string]string `json:"audiences,omitempty"`
	// CAFile, when set, is a PEM bundle to trust (msftsim writes its own).
	CAFile string `json:"caFile,omitempty"`
}

// Scope returns the client-credentials scope for api, or "" when the cloud
// has no audience for it.
func (e Endpoints) Scope(api API) string {
	aud := e.Audiences[string(api)]
	if aud == "" {
		return ""
	}
	return strings.TrimSuffix(aud, "/") + "/.default"
}

// DefaultClouds returns the built-in endpoints of the five clouds
// (shared/reference/microsoft.md section 7).
func DefaultClouds() map[string]Endpoints {
	return map[string]Endpoints{
		CloudGlobal: {
			Authority: "https://login.microsoftonline.com/", Graph: "https://graph.microsoft.com/v1.0",
			ARM: "https://management.azure.com", LogAnalytics: "https://api.loganalytics.io",
			// Service base URI per Microsoft's "Supported Microsoft Defender for
			// Endpoint APIs" (exposed-apis-list); the token audience is unchanged.
			Defender: "https://api.security.microsoft.com",
			Audiences: map[string]string{
				string(APIGraph): "https://graph.microsoft.com", string(APIARM): "https://management.azure.com",
				string(APILogAnalytics): "https://api.loganalytics.io", string(APIDefender): "https://api.securitycenter.microsoft.com",
				string(APIExchange): "https://outlook.office365.com", string(APICloudApps): cloudAppsAppID,
			},
		},
		// US Government GCC (moderate). Per Microsoft's "Defender for Endpoint
		// for US Government customers" (https://learn.microsoft.com/defender-endpoint/gov#api):
		// GCC signs in at login.microsoftonline.com and its Defender for
		// Endpoint API is https://api-gcc.securitycenter.microsoft.us. GCC's
		// Microsoft 365 runs in the commercial cloud, so Graph is
		// graph.microsoft.com (https://learn.microsoft.com/graph/deployments:
		// GCC uses the global service), and its Azure subscriptions (the
		// Sentinel workspace) are Azure commercial ones: management.azure.com
		// and api.loganalytics.io.
		CloudGCC: {
			Authority: "https://login.microsoftonline.com/", Graph: "https://graph.microsoft.com/v1.0",
			ARM: "https://management.azure.com", LogAnalytics: "https://api.loganalytics.io",
			Defender: "https://api-gcc.securitycenter.microsoft.us",
			Audiences: map[string]string{
				string(APIGraph): "https://graph.microsoft.com", string(APIARM): "https://management.azure.com",
				string(APILogAnalytics): "https://api.loganalytics.io", string(APIDefender): "https://api-gcc.securitycenter.microsoft.us",
				string(APIExchange): "https://outlook.office365.com", string(APICloudApps): cloudAppsAppID,
			},
		},
		CloudGCCHigh: {
			Authority: "https://login.microsoftonline.us/", Graph: "https://graph.microsoft.us/v1.0",
			ARM: "https://management.usgovcloudapi.net", LogAnalytics: "https://api.loganalytics.us",
			// Defender for Endpoint GCC High / DoD API host, confirmed in
			// Microsoft's "Defender for Endpoint for US Government customers" (gov#api).
			Defender: "https://api-gov.securitycenter.microsoft.us",
			Audiences: map[string]string{
				string(APIGraph): "https://graph.microsoft.us", string(APIARM): "https://management.usgovcloudapi.net",
				string(APILogAnalytics): "https://api.loganalytics.us", string(APIDefender): "https://api-gov.securitycenter.microsoft.us",
				// Exchange Online GCC High; Cloud Apps: the global app ID (sovereign value unknown).
				string(APIExchange): "https://outlook.office365.us", string(APICloudApps): cloudAppsAppID,
			},
		},
		CloudDoD: {
			Authority: "https://login.microsoftonline.us/", Graph: "https://dod-graph.microsoft.us/v1.0",
			ARM: "https://management.usgovcloudapi.net", LogAnalytics: "https://api.loganalytics.us",
			Defender: "https://api-gov.securitycenter.microsoft.us", // as GCC High (gov#api: "GCC High & DoD")
			Audiences: map[string]string{
				string(APIGraph): "https://dod-graph.microsoft.us", string(APIARM): "https://management.usgovcloudapi.net",
				string(APILogAnalytics): "https://api.loganalytics.us", string(APIDefender): "https://api-gov.securitycenter.microsoft.us",
				// Exchange Online DoD; Cloud Apps: the global app ID (sovereign value unknown).
				string(APIExchange): "https://outlook-dod.office365.us", string(APICloudApps): cloudAppsAppID,
			},
		},
		CloudChina: {
			// Microsoft Entra operated by 21Vianet signs in at
			// login.partner.microsoftonline.cn (authorize, token and
			// adminconsent endpoints), per the China docs' national-cloud table
			// (https://docs.azure.cn/entra/identity-platform/authentication-national-cloud);
			// login.chinacloudapi.cn is the older name.
			Authority: "https://login.partner.microsoftonline.cn/", Graph: "https://microsoftgraph.chinacloudapi.cn/v1.0",
			ARM: "https://management.chinacloudapi.cn", LogAnalytics: "https://api.loganalytics.azure.cn",
			// Defender for Endpoint is not offered by 21Vianet as far as we
			// know: no Defender endpoint; configure one if that changes.
			Audiences: map[string]string{
				string(APIGraph): "https://microsoftgraph.chinacloudapi.cn", string(APIARM): "https://management.chinacloudapi.cn",
				string(APILogAnalytics): "https://api.loganalytics.azure.cn",
				// Exchange Online by 21Vianet; Cloud Apps: the global app ID (unknown for China).
				string(APIExchange): "https://partner.outlook.cn", string(APICloudApps): cloudAppsAppID,
			},
		},
	}
}

// cloudAppsAppID is Microsoft Cloud App Security's application ID, the
// token resource of the Defender for Cloud Apps API.
const cloudAppsAppID = "05a65629-4c1b-48c1-a78b-804c4abdd4af"

// LoadEndpointsFile reads a JSON endpoints file and returns DefaultClouds()
// with its overrides. The file is either an object of cloud entries,
//
//	{"*": {"authority": "https://sim:8443/", "graph": "https://sim:8443/v1.0", ...},
//	 "global": {"arm": "https://arm.example"}}
//
// where "*" applies to every cloud (the four built-in ones and any other
// named in the file) and a named entry then applies to its cloud, or a
// single Endpoints object, which is taken as "*": msftsim's endpoints.json
// (its extra keys base, admin and host are ignored). In an entry, only
// non-empty fields override; audiences merge key by key.
func LoadEndpointsFile(path string) (map[string]Endpoints, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading endpoints file: %w", err)
	}
	entries, err := parseEndpoints(b)
	if err != nil {
		return nil, fmt.Errorf("endpoints file %s: %w", path, err)
	}
	return MergeEndpoints(DefaultClouds(), entries), nil
}

func parseEndpoints(b []byte) (map[string]Endpoints, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	single := false
	for _, k := range []string{"authority", "graph", "arm", "logAnalytics", "defender", "cloudApps", "audiences", "caFile"} {
		if _, ok := raw[k]; ok {
			single = true
		}
	}
	if single {
		var e Endpoints
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, err
		}
		return map[string]Endpoints{allCloudsName: e}, nil
	}
	out := make(map[string]Endpoints, len(raw))
	for k, v := range raw {
		var e Endpoints
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("entry %q: %w", k, err)
		}
		out[k] = e
	}
	return out, nil
}

// MergeEndpoints applies override entries ("*" first, then per cloud) to
// base and returns the result; base is not modified.
func MergeEndpoints(base, entries map[string]Endpoints) map[string]Endpoints {
	out := make(map[string]Endpoints, len(base))
	for k, v := range base {
		v.Audiences = maps.Clone(v.Audiences)
		out[k] = v
	}
	for k := range entries {
		if _, ok := out[k]; !ok && k != allCloudsName {
			out[k] = Endpoints{}
		}
	}
	star, hasStar := entries[allCloudsName]
	for k, v := range out {
		if hasStar {
			v = overlay(v, star)
		}
		if e, ok := entries[k]; ok {
			v = overlay(v, e)
		}
		out[k] = v
	}
	return out
}

func overlay(base, o Endpoints) Endpoints {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&base.Authority, o.Authority)
	set(&base.Graph, o.Graph)
	set(&base.ARM, o.ARM)
	set(&base.LogAnalytics, o.LogAnalytics)
	set(&base.Defender, o.Defender)
	set(&base.CloudApps, o.CloudApps)
	set(&base.CAFile, o.CAFile)
	if len(o.Audiences) > 0 {
		a := maps.Clone(base.Audiences)
		if a == nil {
			a = map[string]string{}
		}
		for k, v := range o.Audiences {
			a[normalizeAPI(k)] = v
		}
		base.Audiences = a
	}
	return base
}

// normalizeAPI maps msftsim's and people's spellings to API values.
func normalizeAPI(k string) string {
	k = strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(k))
	return k
}

// validate checks one cloud's endpoints are usable URLs.
func (e Endpoints) validate(cloud string) error {
	check := func(name, v string, required bool) error {
		if v == "" {
			if required {
				return fmt.Errorf("cloud %q: %s endpoint is empty", cloud, name)
			}
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return fmt.Errorf("cloud %q: %s endpoint %q is not an absolute URL", cloud, name, v)
		}
		if u.Scheme != "https" {
			return fmt.Errorf("cloud %q: %s endpoint %q must be https", cloud, name, v)
		}
		return nil
	}
	for _, c := range []struct {
		name, v  string
		required bool
	}{{"authority", e.Authority, true}, {"graph", e.Graph, true}, {"arm", e.ARM, false},
		{"logAnalytics", e.LogAnalytics, false}, {"defender", e.Defender, false}, {"cloudApps", e.CloudApps, false}} {
		if err := check(c.name, c.v, c.required); err != nil {
			return err
		}
	}
	return nil
}
