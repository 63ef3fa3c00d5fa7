package microsoft

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// Session is one conversation with Microsoft under one application's
// credentials in one tenant: a new credential (secretCredential, or
// azidentity's for a certificate), so its tokens are
// never shared with another session (a token fetched before a change is
// never reused after it). A verification check opens one; a Directory
// holds one. Safe for concurrent use.
type Session struct {
	c    *Client
	ep   Endpoints
	cred azcore.TokenCredential

	org, tenant, clientID, authorityHost string

	azure azureClients

	graphOnce sync.Once
	graph     *msgraphsdk.GraphServiceClient
	graphErr  error
}

// operation prepares ctx for one Token or Probe call: its own Retry-After
// budget, and its requests marked safe to repeat (they only read).
func (s *Session) operation(ctx context.Context) context.Context {
	return withCaller(withRetry(withThrottleBudget(ctx, s.c.cfg.MaxThrottleWait), Idempotent), s.org, s.tenant, s.clientID)
}

// Token gets an access token for api and decodes its roles and expiry.
func (s *Session) Token(ctx context.Context, api API) (Token, error) {
	_, tok, err := s.rawToken(s.operation(ctx), api)
	return tok, err
}

// rawToken returns the bearer token for api and what it says.
func (s *Session) rawToken(ctx context.Context, api API) (string, Token, error) {
	return s.bearer(ctx, api, true)
}

// bearer returns the bearer token for api, and what it says when decode
// is set (else only its expiry).
func (s *Session) bearer(ctx context.Context, api API, decode bool) (string, Token, error) {
	op := "token " + string(api)
	scope := s.ep.Scope(api)
	if scope == "" {
		return "", Token{}, notConfigured("entra", op, "NoAudience",
			"no token audience configured for API "+string(api)+" in this cloud",
			"dzconnect has no endpoint for this API in the tenant's cloud; the feature cannot be checked there.")
	}
	// Respect an open Retry-After window of the token endpoint here: from
	// inside azidentity the error would lose its classification.
	if who, _ := ctx.Value(callerKey{}).(string); who != "" {
		budget, _ := ctx.Value(budgetKey{}).(*throttleBudget)
		if budget == nil {
			budget = &throttleBudget{remaining: s.c.cfg.MaxThrottleWait}
		}
		if err := s.c.gate().await(ctx, s.authorityHost+"|"+who, budget, 20*time.Millisecond); err != nil {
			return "", Token{}, mserr.Classify("entra", op, err)
		}
	}
	// The Azure SDK modules (ARM, Log Analytics) ask for CAE tokens, which
	// azidentity caches apart from the others: ask the same way, so that
	// their call finds this token in the cache instead of fetching another.
	at, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, EnableCAE: api == APIARM || api == APILogAnalytics})
	if err != nil {
		return "", Token{}, mserr.Classify("entra", op, err)
	}
	tok := Token{ExpiresOn: at.ExpiresOn}
	if !decode {
		return at.Token, tok, nil
	}
	if c, ok := decodeClaims(at.Token); ok {
		tok.Roles, tok.PrincipalID = c.Roles, c.Oid
		if c.Exp > 0 {
			tok.ExpiresOn = time.Unix(c.Exp, 0).UTC()
		}
	}
	return at.Token, tok, nil
}

// claims are the access-token claims read for diagnostics. The signature is
// not checked: Microsoft asks clients not to rely on token contents, and
// dzconnect reports them, never authorizes with them.
type claims struct {
	Roles []string `json:"roles"`
	Exp   int64    `json:"exp"`
	Oid   string   `json:"oid"`
}

func decodeClaims(jwt string) (claims, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return claims{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return claims{}, false
	}
	var c claims
	if json.Unmarshal(b, &c) != nil {
		return claims{}, false
	}
	return c, true
}

// Probe runs one data-plane call.
func (s *Session) Probe(ctx context.Context, p Probe, ws *Workspace) error {
	ctx = s.operation(ctx)
	switch p {
	case ProbeGraphAlerts, ProbeGraphIncidents, ProbeGraphSignIns, ProbeGraphUsers:
		return s.graphProbe(ctx, p)
	case ProbeDefenderMachines:
		return s.defenderMachines(ctx)
	case ProbeCloudAppsAlerts:
		return s.cloudAppsAlerts(ctx)
	case ProbeSentinelWorkspace:
		return s.sentinelWorkspace(ctx, ws)
	case ProbeLogAnalyticsQuery:
		return s.logAnalyticsQuery(ctx, ws)
	case ProbeSentinelIncidents:
		return s.sentinelIncidents(ctx, ws)
	}
	return &mserr.Error{Operation: "probe " + string(p), Code: "UnknownProbe", Class: mserr.ClassBadRequest,
		Message: "unknown probe " + string(p), Remedy: "A dzconnect bug: contact Dropzone support."}
}

// graphClient builds the session's Graph client on first use: the Azure
// auth provider over this session's credential, attaching tokens only to
// the configured Graph host, and the shared HTTP client.
func (s *Session) graphClient() (*msgraphsdk.GraphServiceClient, error) {
	s.graphOnce.Do(func() {
		u, err := url.Parse(s.ep.Graph)
		if err != nil {
			s.graphErr = err
			return
		}
		scope := s.ep.Scope(APIGraph)
		if scope == "" {
			s.graphErr = notConfigured("graph", "graph client", "NoAudience", "no Graph token audience configured",
				"dzconnect has no Graph endpoint for the tenant's cloud.")
			return
		}
		auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHostsAndObservabilityOptionsAndIsCaeEnabled(
			s.cred, []string{scope}, []string{u.Hostname()}, kauth.ObservabilityOptions{}, false)
		if err != nil {
			s.graphErr = err
			return
		}
		adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, s.c.graphHC)
		if err != nil {
			s.graphErr = err
			return
		}
		adapter.SetBaseUrl(strings.TrimSuffix(s.ep.Graph, "/"))
		// NewGraphServiceClient writes kiota's process-wide backing-store
		// factory on every call (a data race between concurrent sessions);
		// with a nil factory the base client leaves that global alone. The
		// serializer registrations it makes are serialized here too.
		newGraphMu.Lock()
		s.graph = &msgraphsdk.GraphServiceClient{GraphBaseServiceClient: *msgraphsdk.NewGraphBaseServiceClient(adapter, nil)}
		newGraphMu.Unlock()
	})
	return s.graph, s.graphErr
}

// newGraphMu guards msgraph client construction (see graphClient).
var newGraphMu sync.Mutex

// classify labels a probe failure: a token failure inside an SDK call is
// Entra's, anything else the API's.
func classify(service, op string, api API, err error) error {
	var afe *azidentity.AuthenticationFailedError
	var me *mserr.Error
	if errors.As(err, &afe) || errors.As(err, &me) && me.Service == "entra" && me.Operation == "" {
		// A token failure (azidentity's, or secretCredential's unlabelled one).
		return mserr.Classify("entra", "token "+string(api), err)
	}
	return mserr.Classify(service, op, err)
}

func notConfigured(service, op, code, msg, remedy string) *mserr.Error {
	return &mserr.Error{Service: service, Operation: op, Code: code, Class: mserr.ClassNotConfigured, Message: msg, Remedy: remedy}
}
