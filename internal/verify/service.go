package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Store reads check targets and writes check results. Every method runs
// in the caller's unit of work; none opens a transaction or decides
// anything: Record decides, the store writes.
type Store interface {
	// LoadCheckTarget reads a visible integration (with only its active
	// credential) and its tenant in one query.
	LoadCheckTarget(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, tenant.Tenant, error)
	ListChecks(ctx context.Context, tx uow.Tx, org, integrationID uuid.UUID, p page.Request) ([]Check, error)
	// GetIntegrationForUpdate reads a visible integration with its
	// credentials and row-locks it until tx ends.
	GetIntegrationForUpdate(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, error)
	InsertCheck(ctx context.Context, tx uow.Tx, c Check) error
	// RecordExpectedMany writes each of es's check, its integration's
	// last check time and state (and state change time, when the state
	// changes), all in one statement, each only if every expectation in it
	// still holds; it returns the IDs of the checks it wrote (the others:
	// nothing written).
	RecordExpectedMany(ctx context.Context, tx uow.Tx, es []Expected) ([]uuid.UUID, error)
	// SetIntegrationState writes a check's verdict: state, last check time
	// and, when the state differs, the state change time. The version
	// (etag) stays.
	SetIntegrationState(ctx context.Context, tx uow.Tx, org, id uuid.UUID, state integration.State, checkTime time.Time) (integration.Integration, error)
	// MarkCredentialWarned records that the credential-expiring event went
	// out for the credential.
	MarkCredentialWarned(ctx context.Context, tx uow.Tx, org, credential uuid.UUID, at time.Time) error

	// The sweep's grouped record (one statement each for a group of checks):

	// LockIntegrations reads the visible integrations among refs with
	// their credentials and row-locks them (in ID order) until tx ends;
	// missing ones are absent from the result.
	LockIntegrations(ctx context.Context, tx uow.Tx, refs []Ref) ([]integration.Integration, error)
	// InsertChecks writes check rows.
	InsertChecks(ctx context.Context, tx uow.Tx, cs []Check) error
	// SetIntegrationStates writes verdicts as SetIntegrationState does,
	// and returns the integrations written (without credentials).
	SetIntegrationStates(ctx context.Context, tx uow.Tx, vs []Verdict) ([]integration.Integration, error)
}

// Ref names an integration of an organization.
type Ref struct{ Org, ID uuid.UUID }

// Verdict is what a check sets on its integration: its outcome as the
// state, at its end as the last check time.
type Verdict struct {
	Org, ID   uuid.UUID
	State     integration.State
	CheckTime time.Time
}

// Target is what a check runs on: a visible integration with only its
// active credential, and its tenant.
type Target struct {
	Integration integration.Integration
	Tenant      tenant.Tenant
	// CatalogRevision is the revision of the organization's permission
	// catalog override read with the target (0: none), nil when not read:
	// the check then reads the override itself. A sweep's page of targets
	// carries it, so that a check reads the override only when it changed.
	CatalogRevision *int64
}

// Pending is a check whose Microsoft calls are over and whose result is
// not recorded yet (Service.Commit records it).
type Pending struct {
	Check  Check
	loaded integration.Integration // as the check read it
	last   bool                    // Last: its group is written without waiting for more
}

// Last marks p as the last record its caller waits for (a tenant batch's
// last check): the group it joins is written without waiting up to
// groupLinger for more records, which would only keep the batch, and its
// job slot, from ending.
func (p Pending) Last() Pending {
	p.last = true
	return p
}

// Integrations reads an integration's secret.
type Integrations interface {
	ReadSecret(ctx context.Context, in integration.Integration) (string, error)
}

// SecretChanges is an optional extension of Integrations: when an
// integration's secret can change outside its own credentials (shared
// mode: the organization's shared application's secret), the time it last
// changed, so that lag right after it counts as settling, as after a new
// credential, and when that secret expires (nil when unknown), which the
// expiry step judges instead of the integration's own credential.
type SecretChanges interface {
	SecretChangeTime(ctx context.Context, in integration.Integration) (time.Time, bool)
	SecretEndTime(ctx context.Context, in integration.Integration) (*time.Time, bool)
}

// Provisioners gives the organization's provisioner credentials for a
// tenant whose admin consented it; ok is false when there are none (no
// provisioner registered, or not consented in that tenant: a tenant
// whose ProvisionerConsentTime is nil is not asked).
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

// Deps are what checks need.
type Deps struct {
	Tx           uow.Runner
	Store        Store
	Notifier     event.Notifier // events, queued in the transaction that records the check
	Audit        audit.Appender // on-demand checks are a caller's write
	Integrations Integrations
	Microsoft    Microsoft
	// Jobs queues settle re-checks in the recording transaction (nil: no
	// re-check; tests that record checks by hand).
	Jobs JobInserter
	// SettleQueue is the River queue of settle re-checks (the checks
	// queue: a replica without checks does not run them).
	SettleQueue string
}

// Service runs checks.
type Service struct {
	cfg          Config
	tx           uow.Runner
	store        Store
	notify       event.Notifier
	audit        audit.Appender
	integrations Integrations
	ms           Microsoft
	provisioners Provisioners
	catalogs     Catalogs
	now          func() time.Time
	jobs         JobInserter
	settleQueue  string
	group        groupWriter  // the sweep's records, written in groups
	catCache     catalogCache // effective catalogs by override revision (catalogFor)
	onDemand     *onDemand    // bounds on-demand checks (LimitOnDemand; nil: none)
}

// UseProvisioners makes checks read granted permissions from Entra (the
// service principal's app role assignments) through the organization's
// consented provisioner, when there is one.
func (s *Service) UseProvisioners(p Provisioners) { s.provisioners = p }

// NewService returns a Service.
func NewService(cfg Config, d Deps) *Service {
	if cfg.ExpiryWarning <= 0 {
		cfg.ExpiryWarning = 30 * 24 * time.Hour
	}
	if cfg.SettleWindow <= 0 {
		cfg.SettleWindow = 5 * time.Minute
	}
	return &Service{cfg: cfg, tx: d.Tx, store: d.Store, notify: d.Notifier, audit: d.Audit,
		integrations: d.Integrations, ms: d.Microsoft, now: time.Now, jobs: d.Jobs, settleQueue: d.SettleQueue}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// List lists an integration's checks, newest first.
func (s *Service) List(ctx context.Context, org, integrationID uuid.UUID, p page.Request) ([]Check, error) {
	return s.store.ListChecks(ctx, s.tx.Conn(), org, integrationID, p)
}

// Run checks one integration and records the result. A caller's check
// (TriggerAPI) first takes one of the on-demand slots (LimitOnDemand):
// none free, it is refused before anything is read or recorded.
func (s *Service) Run(ctx context.Context, org, id uuid.UUID, trigger string) (Result, error) {
	if trigger == TriggerAPI {
		release, err := s.enterOnDemand(ctx, org)
		if err != nil {
			return Result{}, err
		}
		defer release()
	}
	p, err := s.Prepare(ctx, org, id, trigger)
	if err != nil {
		return Result{}, err
	}
	return s.Commit(ctx, p)
}

// Prepare runs a check of the integration as it is now without recording
// it: Run without its record, for a caller that records it in a
// transaction of its own with CommitIn (provisioning's verify step, in
// the record of the step's success).
func (s *Service) Prepare(ctx context.Context, org, id uuid.UUID, trigger string) (Pending, error) {
	in, t, err := s.store.LoadCheckTarget(ctx, s.tx.Conn(), org, id)
	if err != nil {
		return Pending{}, err
	}
	return s.Check(ctx, Target{Integration: in, Tenant: t}, trigger)
}

// Check runs a check's steps on tg (as loaded by the caller: Run, or a
// sweep batch listing its page of targets) without recording it: Commit
// does. It returns an error only when ctx was canceled: a canceled check
// (the caller went away, the service is shutting down) proves nothing and
// is not recorded, and a scheduled one is retried by the queue.
func (s *Service) Check(ctx context.Context, tg Target, trigger string) (Pending, error) {
	in := tg.Integration
	c := s.run(ctx, tg.Tenant, in, tg.CatalogRevision)
	c.Trigger = trigger
	c.IntegrationVersion = in.Version
	if a, ok := in.Active(); ok {
		c.Credential = a.ID
	}
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return Pending{}, apperr.Wrap(ctx.Err(), apperr.Canceled, "check canceled before it finished; nothing recorded")
	}
	return Pending{Check: c, loaded: in}, nil
}

// Commit records a check Check ran. It is recorded even when the caller's
// deadline cut the check short, or when ctx ends meanwhile: with a fresh
// context bounded by a few seconds, so the finding is not lost. A
// scheduled check is written together with the other scheduled checks
// being committed at the same time (see groupWriter); any other is
// written on its own.
func (s *Service) Commit(ctx context.Context, p Pending) (Result, error) {
	if p.Check.Trigger == TriggerSchedule {
		return s.group.commit(s, p)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return s.record(rctx, p.Check)
}

// run performs the steps; it never returns an error: every failure is a
// step result.
func (s *Service) run(ctx context.Context, t tenant.Tenant, in integration.Integration, catalogRev *int64) (c Check) {
	now := s.now()
	c = Check{Org: in.Org, Tenant: in.Tenant, Integration: in.ID, ID: uuid.Must(uuid.NewV7()), Start: now}
	defer func() { c.End = s.now(); c.outcome() }()
	settling := s.settleEnd(in, now) // nil: the settle window is over
	if sc, ok := s.integrations.(SecretChanges); ok && settling == nil {
		if at, ok := sc.SecretChangeTime(ctx, in); ok {
			settling = settleEndFrom(at, now, s.cfg.SettleWindow)
		}
	}
	cat, catalogNote := s.catalogFor(ctx, in.Org, catalogRev)
	c.CatalogVersion = cat.Version()
	c.SettleEnd = settling // kept only when the outcome is propagating (Check.outcome)
	p := gateProbes(planFor(in.Kind, in.Features), cat, in.Kind)
	if st, ok := cloudStep(in.Kind, t.Cloud); !ok { // a kind retired in the tenant's cloud (azureroles.go)
		c.add(st)
		skipRest(&c, p, "retired in this cloud")
		return c
	}

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
		skipRest(&c, p, "no secret")
		return c
	}
	msg := "present" // shared mode: the shared application's secret
	creds := Credentials{Cloud: string(t.Cloud), Org: in.Org.String(), TenantID: t.EntraTenantID.String(), ClientID: in.ClientID.String(), Secret: secret}
	if active, ok := in.Active(); ok {
		msg = fmt.Sprintf("version %d present", active.SecretVersion)
		if active.Type == integration.CredentialCertificate {
			// A certificate's private key: tokens by client assertion.
			msg = fmt.Sprintf("certificate, version %d present", active.SecretVersion)
			creds.Secret, creds.Certificate = "", secret
		}
	}
	c.add(Step{Name: "secret", Status: StepPassed, Duration: s.now().Sub(start), Message: msg})

	session, err := s.ms.NewSession(creds)
	if err != nil {
		c.add(Step{Name: "token", Status: StepFailed, Message: "cannot talk to Microsoft: " + err.Error()})
		skipRest(&c, p, "no Microsoft session")
		return c
	}

	// Entra's grants are read with the provisioner (another caller, so
	// its requests go out beside the integration's): started now, used in
	// step 3, while the tokens and probes run.
	type grantsRead struct {
		grants []Grant
		creds  []AppCredential // the application's credentials in Entra (nil: not read)
		note   string
		took   time.Duration
	}
	grantsDone := make(chan grantsRead, 1)
	gctx, stopGrants := context.WithCancel(ctx)
	defer stopGrants()
	if s.mayReadGrants(ctx, t) {
		go func() {
			start := s.now()
			g, creds, note := s.entraGrants(gctx, t, in)
			grantsDone <- grantsRead{g, creds, note, s.now().Sub(start)}
		}()
	} else {
		grantsDone <- grantsRead{} // roles from the tokens, without a goroutine
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
			failStep(&step, err, settling)
			c.add(step)
			if step.Status != StepUnavailable && isCredentialFailure(err) {
				stopGrants() // not needed: the check ends here
				<-grantsDone
				skipRest(&c, p, "no token: "+step.ErrorCode)
				s.expiry(ctx, &c, t, in, now, nil)
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

	// 4. The probes, started before step 3 waits for Entra's grants; the
	// steps keep the plan's order.
	var ws *Workspace
	if in.Sentinel != nil {
		ws = &Workspace{SubscriptionID: in.Sentinel.SubscriptionID.String(), ResourceGroup: in.Sentinel.ResourceGroup,
			Name: in.Sentinel.WorkspaceName, WorkspaceID: in.Sentinel.WorkspaceID.String()}
	}
	probeSteps := make([]Step, len(p.probes))
	var wg sync.WaitGroup
	// Sentinel: the Azure roles at the workspace, read beside the probes.
	var (
		rolesStep    Step
		rolesVerdict azureRoleVerdict
		sentinelRole bool
	)
	if in.Kind == integration.KindSentinel && ws != nil && !unavailable[APIARM] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := s.now()
			rolesStep, rolesVerdict, sentinelRole = azureRolesStep(ctx, session, cat, in.Kind, in.Features, in.ClientID.String(), ws, settling)
			rolesStep.Duration = s.now().Sub(start)
		}()
	}
	// The probes of one API, one after the other: they go to one host as
	// one caller, and the Microsoft adapter has one request of a caller in
	// flight per host (a 429 is known before the next request leaves), so
	// a goroutine each would only wait for the one before (BenchmarkSweep:
	// four goroutines per check, their stacks grown by the HTTP client).
	// The APIs' probes run concurrently.
	byAPI := map[API][]int{}
	var apis []API
	for i, pp := range p.probes {
		if st, skip := probeGate(pp, roles, notLicensed, unavailable, ctx.Err() != nil); skip {
			probeSteps[i] = st
			continue
		}
		if byAPI[pp.api] == nil {
			apis = append(apis, pp.api)
		}
		byAPI[pp.api] = append(byAPI[pp.api], i)
	}
	for n, api := range apis {
		probeAPI := func() {
			for _, i := range byAPI[api] {
				pp := p.probes[i]
				start := s.now()
				err := session.Probe(ctx, pp.probe, ws)
				step := Step{Name: "probe:" + string(pp.probe), Duration: s.now().Sub(start)}
				if err != nil {
					failStep(&step, err, settling)
					if pp.optional && step.Status == StepFailed {
						step.Status = StepWarning
					}
				} else {
					step.Status, step.Message = StepPassed, "answered"
				}
				probeSteps[i] = step
			}
		}
		if n == len(apis)-1 {
			probeAPI() // the last API's on this goroutine: a Defender check's only one
		} else {
			wg.Go(probeAPI)
		}
	}
	// 3. Granted permissions against the catalog: from Entra when the
	// organization's provisioner is consented in the tenant, else from the
	// tokens' roles.
	gr := <-grantsDone
	if gr.grants != nil {
		c.Permissions = permissionsFromGrants(cat, in.Kind, in.Features, gr.grants)
	} else {
		c.Permissions = permissionsFromRoles(cat, in.Kind, in.Features, roles, unavailable)
	}
	ps := permissionStep(c.Permissions, settling)
	ps.Duration = gr.took
	if gr.note != "" {
		ps.Message += "; " + gr.note
	}
	if catalogNote != "" {
		ps.Message += "; " + catalogNote
	}
	c.add(ps)

	wg.Wait()
	if rolesStep.Name != "" {
		addAzureRoles(&c.Permissions, rolesVerdict)
		c.add(rolesStep)
		reconcileWorkspaceProbe(probeSteps, sentinelRole)
	}
	for _, st := range probeSteps {
		c.add(st)
	}

	// 5. Credential expiry (by Entra's end date when it was read).
	s.expiry(ctx, &c, t, in, now, gr.creds)
	return c
}

// settleEnd returns when the settle window after in's last change ends
// (nil: it is over): replication lag is expected until then.
func (s *Service) settleEnd(in integration.Integration, now time.Time) *time.Time {
	return settleEndAt(in, now, s.cfg.SettleWindow)
}

// entraGrants reads the granted app roles with the provisioner, and the
// application's credentials when the directory can (nil when not read), or
// returns nil (and why, when a read was attempted and failed).
// mayReadGrants reports whether entraGrants can read anything: with the
// caller's open directory session, or with the organization's provisioner
// in a tenant that consented it (Provisioners has none for a tenant that
// did not). Otherwise a check reads the roles from its tokens without
// starting the read (BenchmarkSweep: a goroutine per check).
func (s *Service) mayReadGrants(ctx context.Context, t tenant.Tenant) bool {
	return provisionerDirectory(ctx) != nil || s.provisioners != nil && t.ProvisionerConsentTime != nil
}

func (s *Service) entraGrants(ctx context.Context, t tenant.Tenant, in integration.Integration) ([]Grant, []AppCredential, string) {
	var err error
	dir := provisionerDirectory(ctx) // the caller's open session (WithDirectory)
	if dir == nil {
		if s.provisioners == nil {
			return nil, nil, ""
		}
		creds, ok, cerr := s.provisioners.ForTenant(ctx, in.Org, t)
		if cerr != nil || !ok {
			if cerr != nil {
				return nil, nil, "provisioner unavailable (" + apperr.KindOf(cerr).String() + "), roles read from the tokens"
			}
			return nil, nil, ""
		}
		dir, err = s.ms.NewDirectory(creds)
	}
	if err == nil {
		var grants []Grant
		if grants, err = dir.AppRoleGrants(ctx, in.ClientID.String()); err == nil {
			if grants == nil {
				grants = []Grant{}
			}
			var appCreds []AppCredential
			if r, ok := dir.(CredentialReader); ok {
				// Expiry from Entra is a bonus: a failed read leaves the
				// recorded date to judge by.
				if ac, err := r.ApplicationCredentials(ctx, in.ClientID.String()); err == nil {
					appCreds = ac
					if appCreds == nil {
						appCreds = []AppCredential{}
					}
				}
			}
			return grants, appCreds, ""
		}
	}
	code := ""
	var e *mserr.Error
	if errors.As(err, &e) {
		code = " " + e.Code
	}
	return nil, nil, "Entra's grants could not be read with the provisioner" + code + ", roles read from the tokens"
}
