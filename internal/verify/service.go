package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

// Store records checks.
type Store interface {
	// RecordCheck stores c, sets the integration's state and last check
	// time, and queues the notifications of a change, all in one
	// transaction. It fails with NotFound if the integration is gone.
	RecordCheck(ctx context.Context, c Check) (Result, error)
	// LoadCheckTarget reads a visible integration and its tenant in one
	// query.
	LoadCheckTarget(ctx context.Context, org, id uuid.UUID) (integration.Integration, tenant.Tenant, error)
	ListChecks(ctx context.Context, org, integrationID uuid.UUID, p page.Request) ([]Check, error)
}

// Integrations reads an integration's secret.
type Integrations interface {
	ReadSecret(ctx context.Context, in integration.Integration) (string, error)
}

// Provisioners gives the organization's provisioner credentials for a
// tenant whose admin consented it; ok is false when there are none (no
// provisioner registered, or not consented in that tenant).
type Provisioners interface {
	ForTenant(ctx context.Context, org uuid.UUID, t tenant.Tenant) (c Credentials, ok bool, err error)
}

// Config tunes checks.
type Config struct {
	// ExpiryWarning: a credential expiring within it is a warning (default 30 days).
	ExpiryWarning time.Duration
	// SettleWindow: errors Microsoft documents as replication lag count as
	// "propagating" within it after a change (default 5 minutes).
	SettleWindow time.Duration
}

// Service runs checks.
type Service struct {
	cfg          Config
	store        Store
	integrations Integrations
	ms           Microsoft
	provisioners Provisioners
	now          func() time.Time
}

// UseProvisioners makes checks read granted permissions from Entra (the
// service principal's app role assignments) through the organization's
// consented provisioner, when there is one.
func (s *Service) UseProvisioners(p Provisioners) { s.provisioners = p }

// NewService returns a Service.
func NewService(cfg Config, store Store, integrations Integrations, ms Microsoft) *Service {
	if cfg.ExpiryWarning <= 0 {
		cfg.ExpiryWarning = 30 * 24 * time.Hour
	}
	if cfg.SettleWindow <= 0 {
		cfg.SettleWindow = 5 * time.Minute
	}
	return &Service{cfg: cfg, store: store, integrations: integrations, ms: ms, now: time.Now}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// List lists an integration's checks, newest first.
func (s *Service) List(ctx context.Context, org, integrationID uuid.UUID, p page.Request) ([]Check, error) {
	return s.store.ListChecks(ctx, org, integrationID, p)
}

// Run checks one integration and records the result.
func (s *Service) Run(ctx context.Context, org, id uuid.UUID, trigger string) (Result, error) {
	in, t, err := s.store.LoadCheckTarget(ctx, org, id)
	if err != nil {
		return Result{}, err
	}
	c := s.run(ctx, t, in)
	c.Trigger = trigger
	c.IntegrationVersion = in.Version
	// A canceled check (the caller went away, the service is shutting
	// down) proves nothing: it is not recorded, and a scheduled one is
	// retried by the queue.
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return Result{}, apperr.Wrap(ctx.Err(), apperr.Canceled, "check canceled before it finished; nothing recorded")
	}
	// Record even when the caller's deadline cut the check short: a fresh
	// context bounded by a few seconds, so the finding is not lost.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return s.store.RecordCheck(rctx, c)
}

// plan is what an integration uses: the APIs it needs tokens for and the
// probes that prove them.
type plan struct {
	apis   []API
	probes []probePlan
}

type probePlan struct {
	probe    Probe
	api      API
	needs    string // permission value the probe exercises ("" for Azure RBAC)
	optional bool   // run only when the permission is granted
}

var resourceOf = map[API]string{
	APIGraph:        catalog.GraphAppID,
	APIDefender:     catalog.DefenderATPAppID,
	APICloudApps:    catalog.CloudAppSecAppID,
	APIExchange:     catalog.ExchangeAppID,
	APILogAnalytics: catalog.LogAnalyticsAppID,
}

func planFor(in integration.Integration) plan {
	has := func(f integration.Feature) bool { return slices.Contains(in.Features, f) }
	if in.Kind == integration.KindSentinel {
		return plan{
			apis: []API{APILogAnalytics, APIARM, APIGraph},
			probes: []probePlan{
				{probe: ProbeSentinelWorkspace, api: APIARM},
				{probe: ProbeLogAnalyticsQuery, api: APILogAnalytics, needs: "Data.Read"},
				{probe: ProbeGraphSecurityEvts, api: APIGraph, needs: "SecurityEvents.Read.All", optional: true},
			},
		}
	}
	p := plan{
		apis: []API{APIGraph},
		probes: []probePlan{
			{probe: ProbeGraphAlerts, api: APIGraph, needs: "SecurityAlert.Read.All"},
			{probe: ProbeGraphIncidents, api: APIGraph, needs: "SecurityIncident.Read.All"},
			{probe: ProbeGraphSignIns, api: APIGraph, needs: "AuditLog.Read.All"},
			{probe: ProbeGraphUsers, api: APIGraph, needs: "User.Read.All"},
		},
	}
	if has(integration.FeatureLiveResponse) {
		p.apis = append(p.apis, APIDefender)
		p.probes = append(p.probes, probePlan{probe: ProbeDefenderMachines, api: APIDefender, needs: "Machine.Read.All"})
	}
	if has(integration.FeatureCloudApps) {
		p.apis = append(p.apis, APICloudApps)
		p.probes = append(p.probes, probePlan{probe: ProbeCloudAppsAlerts, api: APICloudApps, needs: "investigation.read"})
	}
	if has(integration.FeatureExchange) {
		p.apis = append(p.apis, APIExchange)
	}
	return p
}

// run performs the steps; it never returns an error: every failure is a
// step result.
func (s *Service) run(ctx context.Context, t tenant.Tenant, in integration.Integration) (c Check) {
	now := s.now()
	c = Check{Org: in.Org, Tenant: in.Tenant, Integration: in.ID, ID: uuid.Must(uuid.NewV7()), Start: now}
	defer func() { c.End = s.now(); c.outcome() }()
	settling := s.settling(in, now)
	p := planFor(in)

	// 1. The secret is in Vault.
	start := s.now()
	secret, err := s.integrations.ReadSecret(ctx, in)
	if err != nil {
		step := Step{Name: "secret", Status: StepFailed, Duration: s.now().Sub(start),
			Message: "the client secret is missing from Vault",
			Remedy:  "update the integration with the client secret's Value"}
		if !apperr.Is(err, apperr.NotFound) {
			// dzconnect's own secret store is unreachable: nothing is known
			// about the integration, and the customer has nothing to fix.
			step.Status, step.Message, step.Remedy = StepWarning, "the secret store did not answer ("+apperr.KindOf(err).String()+"); not verified", ""
		}
		c.add(step)
		s.skipRest(&c, p, "no secret")
		return c
	}
	c.add(Step{Name: "secret", Status: StepPassed, Duration: s.now().Sub(start), Message: fmt.Sprintf("version %d present", in.Credential.Version)})

	session, err := s.ms.NewSession(Credentials{Cloud: string(t.Cloud), TenantID: t.EntraTenantID.String(), ClientID: in.ClientID.String(), Secret: secret})
	if err != nil {
		c.add(Step{Name: "token", Status: StepFailed, Message: "cannot talk to Microsoft: " + err.Error()})
		s.skipRest(&c, p, "no Microsoft session")
		return c
	}

	// 2. A fresh token per API.
	roles := map[API][]string{}
	unavailable := map[API]bool{} // no token
	notLicensed := map[API]bool{} // no token because the product is not there
	for _, api := range p.apis {
		if ctx.Err() != nil {
			c.add(Step{Name: "token:" + string(api), Status: StepSkipped, Message: "deadline reached"})
			unavailable[api] = true
			continue
		}
		start := s.now()
		tok, err := session.Token(ctx, api)
		step := Step{Name: "token:" + string(api), Duration: s.now().Sub(start)}
		if err != nil {
			s.failStep(&step, err, settling)
			c.add(step)
			if step.Status != StepUnavailable && isCredentialFailure(err) {
				s.skipRest(&c, p, "no token: "+step.ErrorCode)
				s.expiry(&c, in, now)
				return c
			}
			unavailable[api] = true
			notLicensed[api] = step.Status == StepUnavailable
			continue
		}
		step.Status, step.Message = StepPassed, fmt.Sprintf("token with %d role(s), expires %s", len(tok.Roles), tok.ExpiresOn.UTC().Format(time.RFC3339))
		c.add(step)
		roles[api] = tok.Roles
	}

	// 3. Granted permissions against the catalog: from Entra when the
	// organization's provisioner is consented in the tenant, else from the
	// tokens' roles.
	start = s.now()
	grants, note := s.entraGrants(ctx, t, in)
	if grants != nil {
		c.Permissions = s.permissionsFromGrants(in, grants)
	} else {
		c.Permissions = s.permissions(in, roles, unavailable)
	}
	ps := s.permissionStep(c.Permissions, settling)
	ps.Duration = s.now().Sub(start)
	if note != "" {
		ps.Message += "; " + note
	}
	c.add(ps)

	// 4. One probe per API, concurrently (they are independent); the steps
	// keep the plan's order.
	var ws *Workspace
	if in.Sentinel != nil {
		ws = &Workspace{SubscriptionID: in.Sentinel.SubscriptionID.String(), ResourceGroup: in.Sentinel.ResourceGroup,
			Name: in.Sentinel.WorkspaceName, WorkspaceID: in.Sentinel.WorkspaceID.String()}
	}
	probeSteps := make([]Step, len(p.probes))
	var wg sync.WaitGroup
	for i, pp := range p.probes {
		name := "probe:" + string(pp.probe)
		switch {
		case notLicensed[pp.api]:
			probeSteps[i] = Step{Name: name, Status: StepUnavailable, Message: "product not licensed or onboarded in the tenant"}
			continue
		case unavailable[pp.api]:
			probeSteps[i] = Step{Name: name, Status: StepSkipped, Message: "no token for " + string(pp.api)}
			continue
		case pp.optional && !slices.Contains(roles[pp.api], pp.needs):
			probeSteps[i] = Step{Name: name, Status: StepSkipped, Message: "optional permission " + pp.needs + " not granted"}
			continue
		case ctx.Err() != nil:
			probeSteps[i] = Step{Name: name, Status: StepSkipped, Message: "deadline reached"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := s.now()
			err := session.Probe(ctx, pp.probe, ws)
			step := Step{Name: name, Duration: s.now().Sub(start)}
			if err != nil {
				s.failStep(&step, err, settling)
				if pp.optional && step.Status == StepFailed {
					step.Status = StepWarning
				}
			} else {
				step.Status, step.Message = StepPassed, "answered"
			}
			probeSteps[i] = step
		}()
	}
	wg.Wait()
	for _, st := range probeSteps {
		c.add(st)
	}

	// 5. Credential expiry.
	s.expiry(&c, in, now)
	return c
}

// settling reports whether in changed recently enough that replication
// lag is expected.
func (s *Service) settling(in integration.Integration, now time.Time) bool {
	last := in.CreateTime
	if ct := in.Credential.CreateTime; ct != nil && ct.After(last) {
		last = *ct
	}
	return now.Sub(last) < s.cfg.SettleWindow
}

// isCredentialFailure reports errors after which no other call can work.
func isCredentialFailure(err error) bool {
	var e *mserr.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Class {
	case mserr.ClassInvalidSecret, mserr.ClassExpiredSecret, mserr.ClassAppNotFound, mserr.ClassTenantNotFound,
		mserr.ClassAppDisabled, mserr.ClassPolicyBlocked, mserr.ClassCertificateInvalid:
		return true
	}
	return false
}

// failStep fills a failed step from a Microsoft error.
func (s *Service) failStep(step *Step, err error, settling bool) {
	var e *mserr.Error
	if !errors.As(err, &e) {
		step.Status, step.Message = StepFailed, "unexpected error"
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			step.Status, step.Message = StepSkipped, "deadline reached"
		}
		return
	}
	step.ErrorCode, step.Message, step.Remedy = e.Code, e.Message, e.Remedy
	if step.ErrorCode == "" && e.Status != 0 {
		step.ErrorCode = fmt.Sprintf("HTTP %d", e.Status)
	}
	switch {
	case e.Class == mserr.ClassNotLicensed:
		step.Status = StepUnavailable
	case e.Class == mserr.ClassPolicyBlocked:
		step.Status = StepBlocked
	case settling && mserr.IsReplicationLag(e): // the one definition of lag
		step.Status = StepPropagating
		step.Remedy = "none yet: a recent change is still replicating in Microsoft's directory; the next check should pass"
	case e.Class == mserr.ClassTransient || e.Class == mserr.ClassThrottled:
		step.Status = StepWarning
		step.Message = "Microsoft did not answer conclusively: " + e.Message
	default:
		step.Status = StepFailed
	}
}

// skipRest marks the steps that cannot run.
func (s *Service) skipRest(c *Check, p plan, why string) {
	c.add(Step{Name: "permissions", Status: StepSkipped, Message: why})
	for _, pp := range p.probes {
		c.add(Step{Name: "probe:" + string(pp.probe), Status: StepSkipped, Message: why})
	}
}

// permissions compares the tokens' roles with the catalog for the
// integration's kind and features.
func (s *Service) permissions(in integration.Integration, roles map[API][]string, unavailable map[API]bool) Permissions {
	p := Permissions{Source: SourceTokenRoles}
	want := map[string]catalog.Entry{}
	for _, e := range catalog.For(in.Kind, in.Features) {
		if e.Type == catalog.TypeApplication {
			want[e.ResourceAppID+"/"+e.Value] = e
		}
	}
	granted := map[string]bool{}
	for api, rs := range roles {
		for _, r := range rs {
			key := resourceOf[api] + "/" + r
			granted[key] = true
			p.Granted = append(p.Granted, r)
			if _, ok := want[key]; !ok {
				p.Extra = append(p.Extra, r)
			}
		}
	}
	apiOf := map[string]API{}
	for api, id := range resourceOf {
		apiOf[id] = api
	}
	for key, e := range want {
		if granted[key] || unavailable[apiOf[e.ResourceAppID]] {
			continue
		}
		if _, fetched := roles[apiOf[e.ResourceAppID]]; !fetched {
			continue // no token for that API was needed or obtained
		}
		if e.Requirement == catalog.Required {
			p.MissingRequired = append(p.MissingRequired, e.Value)
		} else {
			p.MissingOptional = append(p.MissingOptional, e.Value)
		}
	}
	for _, l := range [][]string{p.Granted, p.Extra, p.MissingRequired, p.MissingOptional} {
		sort.Strings(l)
	}
	return p
}

// entraGrants reads the granted app roles with the provisioner, or returns
// nil (and why, when a read was attempted and failed).
func (s *Service) entraGrants(ctx context.Context, t tenant.Tenant, in integration.Integration) ([]Grant, string) {
	if s.provisioners == nil {
		return nil, ""
	}
	creds, ok, err := s.provisioners.ForTenant(ctx, in.Org, t)
	if err != nil || !ok {
		if err != nil {
			return nil, "provisioner unavailable (" + apperr.KindOf(err).String() + "), roles read from the tokens"
		}
		return nil, ""
	}
	dir, err := s.ms.NewDirectory(creds)
	if err == nil {
		var grants []Grant
		if grants, err = dir.AppRoleGrants(ctx, in.ClientID.String()); err == nil {
			if grants == nil {
				grants = []Grant{}
			}
			return grants, ""
		}
	}
	code := ""
	var e *mserr.Error
	if errors.As(err, &e) {
		code = " " + e.Code
	}
	return nil, "Entra's grants could not be read with the provisioner" + code + ", roles read from the tokens"
}

// permissionsFromGrants compares Entra's app role assignments with the
// catalog: the authoritative view (what admin consent granted).
func (s *Service) permissionsFromGrants(in integration.Integration, grants []Grant) Permissions {
	p := Permissions{Source: SourceEntraAssignments}
	want := map[string]catalog.Entry{}
	for _, e := range catalog.For(in.Kind, in.Features) {
		if e.Type == catalog.TypeApplication {
			want[strings.ToLower(e.ResourceAppID)+"/"+e.Value] = e
		}
	}
	granted := map[string]bool{}
	for _, g := range grants {
		key := strings.ToLower(g.ResourceAppID) + "/" + g.Value
		if granted[key] {
			continue
		}
		granted[key] = true
		p.Granted = append(p.Granted, g.Value)
		if _, ok := want[key]; !ok {
			p.Extra = append(p.Extra, g.Value)
		}
	}
	for key, e := range want {
		if granted[key] {
			continue
		}
		if e.Requirement == catalog.Required {
			p.MissingRequired = append(p.MissingRequired, e.Value)
		} else {
			p.MissingOptional = append(p.MissingOptional, e.Value)
		}
	}
	for _, l := range [][]string{p.Granted, p.Extra, p.MissingRequired, p.MissingOptional} {
		sort.Strings(l)
	}
	return p
}

func (s *Service) permissionStep(p Permissions, settling bool) Step {
	step := Step{Name: "permissions", Status: StepPassed, Message: fmt.Sprintf("%d granted (from %s)", len(p.Granted), p.Source)}
	if len(p.Extra) > 0 {
		step.Message += "; not needed: " + strings.Join(p.Extra, ", ")
	}
	switch {
	case len(p.MissingRequired) > 0:
		step.Status = StepFailed
		step.ErrorCode = "PERMISSION_MISSING"
		step.Message = "required permission(s) not granted: " + strings.Join(p.MissingRequired, ", ")
		step.Remedy = "add the application permission(s) in Entra (API permissions) and grant admin consent"
		if settling {
			step.Status = StepPropagating
			step.Remedy = "if consent was just granted, wait: tokens carry new roles after up to a minute"
		}
	case len(p.MissingOptional) > 0:
		step.Status = StepWarning
		step.Message = "optional permission(s) not granted: " + strings.Join(p.MissingOptional, ", ")
		step.Remedy = "grant them for the full feature set, or ignore"
	}
	return step
}

// expiry judges the credential's end date.
func (s *Service) expiry(c *Check, in integration.Integration, now time.Time) {
	step := Step{Name: "expiry", Status: StepPassed}
	exp := in.Credential.ExpireTime
	switch {
	case exp == nil:
		step.Message = "expiry unknown: set credential.expire_time to be warned before the secret expires"
	case !now.Before(*exp):
		step.Status, step.ErrorCode = StepFailed, "CREDENTIAL_EXPIRED"
		step.Message = "the client secret expired on " + exp.UTC().Format(time.RFC3339)
		step.Remedy = "rotate: create a new client secret and update the integration"
	case exp.Sub(now) < s.cfg.ExpiryWarning:
		step.Status, step.ErrorCode = StepWarning, "CREDENTIAL_EXPIRING"
		step.Message = fmt.Sprintf("the client secret expires in %d day(s), on %s", int(exp.Sub(now).Hours()/24), exp.UTC().Format(time.RFC3339))
		step.Remedy = "rotate before it expires"
		c.ExpiringSoon = true
	default:
		step.Message = fmt.Sprintf("expires in %d days", int(exp.Sub(now).Hours()/24))
	}
	c.add(step)
}
