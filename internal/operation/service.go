package operation

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Store persists operations and their steps. Every method runs in the
// caller's unit of work, is scoped by organization and never opens a
// transaction. Operations are returned with their steps.
type Store interface {
	// InsertOperation inserts op (state pending) and one pending step per
	// name, in order.
	InsertOperation(ctx context.Context, tx uow.Tx, op Operation, steps []string) (Operation, error)
	GetOperation(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Operation, error)
	// OperationVersion reads the operation's version and state alone.
	OperationVersion(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (int64, State, error)
	// LockOperation reads and row-locks an operation until tx ends, and
	// returns the database's time (for leases and backoff).
	LockOperation(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (Operation, time.Time, error)
	// ListOperations lists newest first, after p.After (exclusive; older).
	ListOperations(ctx context.Context, tx uow.Tx, org uuid.UUID, f Filter, p page.Request) ([]Operation, error)
	// UpdateOperation writes op's mutable fields (not its steps) and bumps
	// its version: waiters are notified on commit.
	UpdateOperation(ctx context.Context, tx uow.Tx, op Operation) (Operation, error)
	// UpdateStep writes one step's mutable fields.
	UpdateStep(ctx context.Context, tx uow.Tx, org, id uuid.UUID, s StepRecord) error
	// WriteOperation writes steps' mutable fields and op's (bumping its
	// version), as UpdateStep for each and UpdateOperation do, in one
	// statement (the runner's records: one round trip each). With a fence,
	// it writes nothing and returns ErrFenced unless the operation is
	// still at the fence's version and held by its owner.
	WriteOperation(ctx context.Context, tx uow.Tx, op Operation, steps []StepRecord, fence *Fence) (Operation, error)
	// SetLease sets (or with uuid.Nil clears) the runner's lease without
	// bumping the version.
	SetLease(ctx context.Context, tx uow.Tx, org, id, owner uuid.UUID, until *time.Time) error
	// RenewLease extends owner's lease by d from the database's now; false
	// when owner no longer holds it.
	RenewLease(ctx context.Context, tx uow.Tx, org, id, owner uuid.UUID, d time.Duration) (bool, error)
	// ListStaleOperations lists, across organizations, up to limit
	// unfinished operations whose lease expired, or that nobody holds and
	// nothing touched for idle while no step waits for a later attempt
	// (the janitor's candidates; it re-checks each under the row lock).
	ListStaleOperations(ctx context.Context, tx uow.Tx, idle time.Duration, limit int) ([]Name, error)
	// SupersedeRun clears the lease (keeping the time in its expiry),
	// bumps the incarnation and returns it; not a visible change.
	SupersedeRun(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (int, error)
}

// Changes wakes waiters when an operation changes (Postgres
// LISTEN/NOTIFY: one listening connection per replica).
type Changes interface {
	// Subscribe returns a channel that receives (coalesced) after each
	// committed change of the operation, and a function to unsubscribe.
	Subscribe(org, id uuid.UUID) (<-chan struct{}, func())
}

// Inserter enqueues River jobs in the caller's transaction (jobs.Inserter).
type Inserter interface {
	Insert(ctx context.Context, tx uow.Tx, args river.JobArgs, opts *river.InsertOpts) error
}

// Config tunes operations. Every field is settable (flags belong in
// internal/config); zero values take the defaults, WithDefaults shows
// them. Tests and the kill test shorten Lease and JanitorInterval so that
// a dead runner's operation is taken over within seconds.
type Config struct {
	Lease       time.Duration // a runner's hold on an operation, renewed every third of it; default 30s
	StepTimeout time.Duration // default (and maximum) time of one step attempt; default 5m
	RunBudget   time.Duration // a job yields between steps after running this long; default 1m
	MaxAttempts int           // default attempts of a step; default 10
	BackoffBase time.Duration // first retry delay, doubled per attempt; default 1s
	BackoffMax  time.Duration // default 5m
	Workers     int           // concurrent operations per replica; default 20; negative: this replica runs none
	WaitDefault time.Duration // WaitOperation without a timeout; default 30s
	WaitMax     time.Duration // longest WaitOperation; default 60s
	WaitRecheck time.Duration // a waiter re-reads this often even without a notification; default 5s
	PollWindow  time.Duration // a poll's deadline when the step gives none (from its first poll); default 30m
	PollMin     time.Duration // shortest wait between two polls of a step; default 1s
	// JanitorInterval is how often the leader's janitor looks for
	// operations whose runner died (expired lease) and hands them to a new
	// River job; default 10s. A dead runner's operation resumes within
	// about its remaining lease plus this (plus River's leader election,
	// up to 15s, when the dead replica was the leader). Negative disables
	// the janitor (River's rescue after JobTimeout remains).
	JanitorInterval time.Duration
	// OrphanAfter: an unfinished operation nobody holds, untouched this
	// long while no step waits for a later attempt, has lost its River job
	// (e.g. it was discarded) and the janitor enqueues a new one; default
	// 5m.
	OrphanAfter time.Duration
	// LagWindow bounds the retries of replication lag (an answer mserr
	// classifies as possibly "not replicated yet", or a step's Lag): the
	// step is tried again, with backoff capped at LagBackoffMax and
	// whatever its attempt count, until this long after it first
	// started; then it fails with the last answer. Default 5m (peers use
	// 80s to 15m, shared/reference/microsoft.md section 5).
	LagWindow time.Duration
	// LagBackoffMax caps the backoff between lag retries; default 16s.
	LagBackoffMax time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.defaults()
	return c
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Lease, 30*time.Second)
	def(&c.StepTimeout, 5*time.Minute)
	def(&c.RunBudget, time.Minute)
	def(&c.BackoffBase, time.Second)
	def(&c.BackoffMax, 5*time.Minute)
	def(&c.WaitDefault, 30*time.Second)
	def(&c.WaitMax, 60*time.Second)
	def(&c.WaitRecheck, 5*time.Second)
	def(&c.PollWindow, 30*time.Minute)
	def(&c.PollMin, time.Second)
	if c.JanitorInterval == 0 {
		c.JanitorInterval = 10 * time.Second
	}
	def(&c.OrphanAfter, 5*time.Minute)
	def(&c.LagWindow, 5*time.Minute)
	def(&c.LagBackoffMax, 16*time.Second)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.Workers == 0 {
		c.Workers = 20
	}
}

// JobTimeout is the longest one run of an operation's job may take: the
// run budget plus one step attempt plus a margin to record it. River
// rescues a job of a dead replica only after this (and after its
// RescueStuckJobsAfter); the janitor takes the operation over much sooner
// (JanitorInterval).
func (c Config) JobTimeout() time.Duration {
	c.defaults()
	return c.RunBudget + c.StepTimeout + min(c.StepTimeout/4, 30*time.Second)
}

// Service runs the operation use cases.
type Service struct {
	cfg     Config
	tx      uow.Runner
	store   Store
	kinds   *Registry
	jobs    Inserter
	changes Changes
	audit   audit.Appender
	events  event.Notifier
	waitNow func() time.Time
}

// NewService returns a Service. events queues operation.finished when a
// Cancel ends an operation at once.
func NewService(cfg Config, tx uow.Runner, store Store, kinds *Registry, jobs Inserter, changes Changes, audit audit.Appender, events event.Notifier) *Service {
	cfg.defaults()
	return &Service{cfg: cfg, tx: tx, store: store, kinds: kinds, jobs: jobs, changes: changes, audit: audit, events: events, waitNow: time.Now}
}

// Spec is an operation to start.
type Spec struct {
	Org       uuid.UUID
	ID        uuid.UUID // optional: uuid.Nil picks a new UUIDv7 (a caller that claims a request_id first picks it)
	Kind      string
	Target    string    // the resource name it works on
	Params    any       // marshalled to a JSON object; never secrets
	RequestID uuid.UUID // the starting call's request_id, if any
}

// NewID returns a new operation ID (UUIDv7).
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// Start inserts the operation, its steps and its River job in the
// caller's transaction: they commit (or roll back) with the caller's
// change, so a started operation always has its job and an operation never
// runs for a change that did not commit. The caller claims the request_id
// (idempotency.Store) and appends the audit event in the same tx.
func (s *Service) Start(ctx context.Context, tx uow.Tx, spec Spec) (Operation, error) {
	k, ok := s.kinds.Get(spec.Kind)
	if !ok {
		return Operation{}, apperr.New(apperr.Internal, "operation kind %q is not registered", spec.Kind)
	}
	params := json.RawMessage(`{}`)
	if spec.Params != nil {
		b, err := json.Marshal(spec.Params)
		if err != nil || len(b) == 0 || b[0] != '{' {
			return Operation{}, apperr.New(apperr.Internal, "operation %s: params must marshal to a JSON object", spec.Kind)
		}
		params = b
	}
	if spec.ID == uuid.Nil {
		spec.ID = NewID()
	}
	names := make([]string, len(k.Steps))
	for i, st := range k.Steps {
		names[i] = st.Name
	}
	op, err := s.store.InsertOperation(ctx, tx, Operation{
		Org: spec.Org, ID: spec.ID, Kind: k.Name, Target: spec.Target, State: StatePending,
		Params: params, RequestID: spec.RequestID, StepsTotal: len(names),
	}, names)
	if err != nil {
		return Operation{}, err
	}
	if err := s.jobs.Insert(ctx, tx, RunArgs{Org: op.Org, ID: op.ID}, nil); err != nil {
		return Operation{}, fmt.Errorf("enqueueing operation %s: %w", op.Name(), err)
	}
	return op, nil
}

// Get returns one operation with its steps.
func (s *Service) Get(ctx context.Context, org, id uuid.UUID) (Operation, error) {
	return s.store.GetOperation(ctx, s.tx.Conn(), org, id)
}

// List lists an organization's operations, newest first.
func (s *Service) List(ctx context.Context, org uuid.UUID, f Filter, p page.Request) ([]Operation, error) {
	return s.store.ListOperations(ctx, s.tx.Conn(), org, f, p)
}

// Unfinished lists, in tx, the organization's operations on target that
// have not ended (newest first): how a use case keeps one operation at a
// time on a resource (it locks the resource's row first, so two callers
// cannot both see none).
func (s *Service) Unfinished(ctx context.Context, tx uow.Tx, org uuid.UUID, target string) ([]Operation, error) {
	var out []Operation
	p := page.Request{Size: 100}
	for {
		ops, err := s.store.ListOperations(ctx, tx, org, Filter{Target: target}, p)
		if err != nil {
			return nil, err
		}
		more := len(ops) > p.Size // the store reads one beyond the page
		if more {
			ops = ops[:p.Size]
		}
		for _, op := range ops {
			if !op.Done() {
				out = append(out, op)
			}
		}
		if !more {
			return out, nil
		}
		p.After = ops[len(ops)-1].ID
	}
}

// Cancel asks an operation to stop (AIP-151 CancelOperation). A running
// step is never interrupted: the runner stops at the next step boundary,
// marks the steps not run canceled and the operation canceled. When no
// runner holds the operation (pending, or waiting for a retry), it is
// canceled at once. Canceling a canceled operation returns it unchanged;
// canceling a succeeded or failed one is FailedPrecondition
// (OPERATION_DONE). The returned operation's steps list what the finished
// steps made (their outputs).
func (s *Service) Cancel(ctx context.Context, org, id uuid.UUID) (Operation, error) {
	var out Operation
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		op, now, err := s.store.LockOperation(ctx, tx, org, id)
		if err != nil {
			return err
		}
		switch {
		case op.State == StateCanceled:
			out = op
			return nil
		case op.Done():
			return apperr.New(apperr.FailedPrecondition, "operation already %s; only a pending or running operation can be canceled", op.State).
				WithReason("OPERATION_DONE")
		}
		op.CancelRequested = true
		if !leaseActive(op, now) {
			changed, err := cancelNow(&op, now)
			if err != nil {
				return err
			}
			if out, err = writeFinal(ctx, tx, s.store, s.kinds, s.events, op, changed, nil); err != nil {
				return err
			}
		} else if out, err = s.store.UpdateOperation(ctx, tx, op); err != nil {
			return err
		} else {
			out.Steps = op.Steps
		}
		return s.audit.AppendAudit(ctx, tx, org, op.Name())
	})
	return out, err
}

// Wait returns when the operation is done, or (with etag set) as soon as
// its version differs from etag, or when timeout passes (default and cap
// from Config, and never past ctx's deadline): the operation as it is
// then. It sleeps on the operation's change notifications, re-reading
// every WaitRecheck as a safety net.
func (s *Service) Wait(ctx context.Context, org, id uuid.UUID, timeout time.Duration, etag int64) (Operation, error) {
	if timeout <= 0 {
		timeout = s.cfg.WaitDefault
	}
	timeout = min(timeout, s.cfg.WaitMax)
	if dl, ok := ctx.Deadline(); ok {
		// Answer before the caller gives up: a margin for the response.
		timeout = min(timeout, max(dl.Sub(s.waitNow())-250*time.Millisecond, 0))
	}
	ch, unsubscribe := s.changes.Subscribe(org, id)
	defer unsubscribe()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	recheck := time.NewTicker(s.cfg.WaitRecheck)
	defer recheck.Stop()
	// The operation is read whole once, then on each change only its
	// version and state, until it is done or (with etag) changed: a
	// provisioning changes at every step boundary, and a waiter for its
	// end need not read its steps each time.
	op, err := s.Get(ctx, org, id)
	for {
		if err != nil {
			return Operation{}, err
		}
		if op.Done() || (etag != 0 && op.Version != etag) {
			return op, nil
		}
		select {
		case <-ch:
		case <-recheck.C:
		case <-deadline.C:
			return s.Get(ctx, org, id) // as it is now, its steps too
		case <-ctx.Done():
			return op, apperr.Wrap(ctx.Err(), apperr.Canceled, "wait canceled")
		}
		v, st, verr := s.store.OperationVersion(ctx, s.tx.Conn(), org, id)
		switch {
		case verr != nil:
			err = verr
		case v != op.Version && (st.Done() || etag != 0):
			op, err = s.Get(ctx, org, id)
		}
	}
}

// leaseActive reports whether a runner holds op at now.
func leaseActive(op Operation, now time.Time) bool {
	return op.LeaseOwner != uuid.Nil && op.LeaseExpireTime != nil && op.LeaseExpireTime.After(now)
}

// Filter selects operations in List; zero fields match everything.
type Filter struct {
	State  State
	Kind   string
	Target string
}

// ParseFilter parses a List filter (AIP-160 subset): clauses
// `field = value` joined by AND, fields state, kind and target, each at
// most once; values bare or double-quoted. state takes the state name in
// any case, with or without the OPERATION_STATE_ prefix. Example:
//
//	state = RUNNING AND kind = "provision-integration"
func ParseFilter(s string) (Filter, error) {
	var f Filter
	toks, err := tokenize(s)
	if err != nil {
		return f, apperr.Invalid("filter", "%s", err)
	}
	seen := map[string]bool{}
	for i := 0; i < len(toks); {
		if i > 0 {
			if !strings.EqualFold(toks[i], "AND") {
				return f, apperr.Invalid("filter", "expected AND between clauses, got %q", toks[i])
			}
			i++
		}
		if i+3 > len(toks) || toks[i+1] != "=" {
			return f, apperr.Invalid("filter", "each clause must be field = value (fields: state, kind, target)")
		}
		field, val := toks[i], unquote(toks[i+2])
		i += 3
		if seen[field] {
			return f, apperr.Invalid("filter", "field %q given twice", field)
		}
		seen[field] = true
		switch field {
		case "state":
			st := State(strings.ToLower(strings.TrimPrefix(strings.ToUpper(val), "OPERATION_STATE_")))
			if !st.Valid() {
				return f, apperr.Invalid("filter", "state must be one of PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED")
			}
			f.State = st
		case "kind":
			if !kindNameRE.MatchString(val) {
				return f, apperr.Invalid("filter", "kind must be an operation kind such as provision-integration")
			}
			f.Kind = val
		case "target":
			if val == "" || len(val) > 500 {
				return f, apperr.Invalid("filter", "target must be a resource name")
			}
			f.Target = val
		default:
			return f, apperr.Invalid("filter", "unknown field %q (fields: state, kind, target)", field)
		}
	}
	return f, nil
}

// String renders f canonically (page tokens are bound to it).
func (f Filter) String() string {
	return fmt.Sprintf("state=%s;kind=%s;target=%s", f.State, f.Kind, f.Target)
}

func tokenize(s string) ([]string, error) {
	var toks []string
	r := []rune(s)
	for i := 0; i < len(r); {
		switch c := r[i]; {
		case unicode.IsSpace(c):
			i++
		case c == '=':
			toks = append(toks, "=")
			i++
		case c == '"':
			j := i + 1
			for j < len(r) && r[j] != '"' {
				j++
			}
			if j == len(r) {
				return nil, fmt.Errorf("unterminated quoted value")
			}
			toks = append(toks, string(r[i:j+1]))
			i = j + 1
		case unicode.IsControl(c):
			return nil, fmt.Errorf("control characters are not allowed")
		default:
			j := i
			for j < len(r) && !unicode.IsSpace(r[j]) && r[j] != '=' && r[j] != '"' {
				j++
			}
			toks = append(toks, string(r[i:j]))
			i = j
		}
	}
	return toks, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
