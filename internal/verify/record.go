package verify

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Expected is a check to record on the sweep's fast path, with the
// expectations under which recording it writes exactly what the full path
// (decide on the integration as locked) would: the integration is still at
// Version and in State (as the check read it); when WarnedCredential is
// set, that credential is still the active one and its expiry warning
// already went out; and when the check changes the state, the active
// credential is still EventCredential (uuid.Nil: none) ending at
// EventCredentialEnd, the two things of the credential its state-change
// event carries. The store applies it, with other checks' in the same
// statement, or not at all.
type Expected struct {
	Check            Check
	Version          int64
	State            integration.State
	WarnedCredential uuid.UUID
	// EventCredential and EventCredentialEnd: the active credential as
	// read, expected when the check changes the state.
	EventCredential    uuid.UUID
	EventCredentialEnd *time.Time
}

// changes reports whether e's check changes its integration's state (its
// record then queues the state-change event).
func (e Expected) changes() bool { return e.State != e.Check.Outcome }

// expectation returns the fast-path expectations for c, checked on loaded
// (the integration as the check read it), or false when c needs the full
// path: an on-demand check (audited), a check without a version, a
// propagating verdict (its settle re-check), a warning to send, an expiry
// date to correct, or an integration being deprovisioned. Under them,
// decide on the locked integration would find it not stale, with no
// warning, no correction, and the state-change event exactly when the
// outcome differs from the state read: the fast path writes that.
func expectation(c Check, loaded integration.Integration) (Expected, bool) {
	// A propagating check takes the full path: it queues its settle
	// re-check (apply).
	if c.Trigger != TriggerSchedule || c.IntegrationVersion == 0 || c.ExpiryMismatch != nil ||
		c.Outcome == integration.StatePropagating || loaded.State == integration.StateDeprovisioning {
		return Expected{}, false
	}
	e := Expected{Check: c, Version: c.IntegrationVersion, State: loaded.State}
	a, active := loaded.Active()
	if c.ExpiringSoon && announcesExpiry(loaded) {
		if !active || a.ID != c.Credential || a.ExpiryWarnTime == nil {
			return Expected{}, false
		}
		e.WarnedCredential = a.ID
	}
	if e.changes() && active {
		e.EventCredential, e.EventCredentialEnd = a.ID, a.EndTime
	}
	return e, true
}

// decision is what recording a check writes, decided from the check and the
// integration as locked in the recording transaction.
type decision struct {
	stale bool // the integration changed while the check ran: history only
	warn  bool // announce the active credential's expiry, once per credential
	// correct: write the active credential's end date read from Entra
	// (entra_expiry.go), announced once by credential_expiry_mismatch.
	correct bool
	audit   bool // an on-demand check is a caller's write
	events  []string
}

func decide(c Check, in integration.Integration) decision {
	if c.IntegrationVersion != 0 && in.Version != c.IntegrationVersion {
		return decision{stale: true}
	}
	// A deprovision operation owns the state until it ends (its end hook
	// sets it): a check that ran meanwhile (on demand) is history only.
	if in.State == integration.StateDeprovisioning {
		return decision{stale: true}
	}
	d := decision{audit: c.Trigger == TriggerAPI}
	if in.State != c.Outcome {
		d.events = append(d.events, event.StateChanged)
	}
	if a, ok := in.Active(); ok && c.ExpiringSoon && announcesExpiry(in) && a.ExpiryWarnTime == nil &&
		(c.Credential == uuid.Nil || c.Credential == a.ID) {
		d.warn = true
		d.events = append(d.events, event.CredentialExpiring)
	}
	if correctsExpiry(c, in) {
		d.correct = true
		d.events = append(d.events, event.CredentialExpiryMismatch)
	}
	return d
}

// checkName formats a check's resource name.
func checkName(c Check) string {
	return resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String() + "/checks/" + c.ID.String()
}

// Record records a check that was run elsewhere (tests, tools): as Run
// does, on the integration as it is now.
func (s *Service) Record(ctx context.Context, c Check) (Result, error) {
	in, _, err := s.store.LoadCheckTarget(ctx, s.tx.Conn(), c.Org, c.Integration)
	if err != nil {
		return Result{}, err
	}
	return s.Commit(ctx, Pending{Check: c, loaded: in})
}

// RecordGroup records scheduled checks run elsewhere (tests, tools) in one
// group, as the sweep's concurrent commits are written (recordGroup), each
// on its integration as it is now; errs[i] is cs[i]'s error.
func (s *Service) RecordGroup(ctx context.Context, cs []Check) (rs []Result, errs []error) {
	ps := make([]Pending, 0, len(cs))
	at := make([]int, 0, len(cs))
	errs = make([]error, len(cs))
	for i, c := range cs {
		if c.Trigger != TriggerSchedule {
			errs[i] = apperr.New(apperr.InvalidArgument, "only scheduled checks are recorded in groups")
			continue
		}
		in, _, err := s.store.LoadCheckTarget(ctx, s.tx.Conn(), c.Org, c.Integration)
		if err != nil {
			errs[i] = err
			continue
		}
		ps, at = append(ps, Pending{Check: c, loaded: in}), append(at, i)
	}
	rs = make([]Result, len(cs))
	grs, gerrs := s.recordGroup(ctx, ps)
	for j, i := range at {
		rs[i], errs[i] = grs[j], gerrs[j]
	}
	return rs, errs
}

// record stores one check in one transaction: the integration is read and
// locked, the check row written, and, unless the check is stale, the state
// set, the credential's expiry warning marked, the audit event appended
// and the events queued.
func (s *Service) record(ctx context.Context, c Check) (Result, error) {
	var r Result
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		var err error
		r, err = s.recordIn(ctx, tx, c)
		return err
	})
	return r, err
}

// CommitIn records a check Prepare ran in the caller's transaction tx, as
// Commit's record does in one of its own: nothing of it is kept unless tx
// commits.
func (s *Service) CommitIn(ctx context.Context, tx uow.Tx, p Pending) (Result, error) {
	return s.recordIn(ctx, tx, p.Check)
}

func (s *Service) recordIn(ctx context.Context, tx uow.Tx, c Check) (Result, error) {
	in, err := s.store.GetIntegrationForUpdate(ctx, tx, c.Org, c.Integration)
	if err != nil {
		return Result{}, err
	}
	if err := s.store.InsertCheck(ctx, tx, c); err != nil {
		return Result{}, err
	}
	d := decide(c, in)
	if d.stale {
		return Result{Check: c, Integration: in, Previous: c.Outcome}, nil
	}
	out, err := s.store.SetIntegrationState(ctx, tx, c.Org, c.Integration, c.Outcome, c.End)
	if err != nil {
		return Result{}, err
	}
	if d.audit {
		if err := s.audit.AppendAudit(ctx, tx, c.Org, checkName(c)); err != nil {
			return Result{}, err
		}
	}
	return s.apply(ctx, tx, c, in, out, d, func(ev event.Event) error { return s.notify.Notify(ctx, tx, c.Org, ev) })
}

// ManyNotifier is implemented by a Notifier that queues several events, of
// any organizations, in one go (webhook.Notifier): the sweep's grouped
// records queue their events with it.
type ManyNotifier interface {
	NotifyMany(ctx context.Context, tx uow.Tx, orgs []uuid.UUID, evs []event.Event) error
}

// groupEvents queues a group's events in tx: together when the notifier
// can (ManyNotifier: one statement for the deliveries, at flush), else one
// by one as they are added.
type groupEvents struct {
	s    *Service
	tx   uow.Tx
	many ManyNotifier
	orgs []uuid.UUID
	evs  []event.Event
}

func (s *Service) eventsIn(tx uow.Tx) *groupEvents {
	many, _ := s.notify.(ManyNotifier)
	return &groupEvents{s: s, tx: tx, many: many}
}

func (q *groupEvents) add(ctx context.Context, org uuid.UUID, ev event.Event) error {
	if q.many == nil {
		return q.s.notify.Notify(ctx, q.tx, org, ev)
	}
	q.orgs, q.evs = append(q.orgs, org), append(q.evs, ev)
	return nil
}

func (q *groupEvents) flush(ctx context.Context) error {
	if q.many == nil || len(q.evs) == 0 {
		return nil
	}
	return q.many.NotifyMany(ctx, q.tx, q.orgs, q.evs)
}

// apply writes what d decided beyond the state (set by the caller: out is
// the integration it wrote), in tx: the credential's expiry warning and the
// events (given to notify, which queues them in tx). in is the integration
// as locked before the state was set.
func (s *Service) apply(ctx context.Context, tx uow.Tx, c Check, in, out integration.Integration, d decision, notify func(event.Event) error) (Result, error) {
	out.Credentials = slices.Clone(in.Credentials)
	active, _ := in.Active()
	if d.warn {
		if err := s.store.MarkCredentialWarned(ctx, tx, c.Org, active.ID, c.End); err != nil {
			return Result{}, err
		}
		for k := range out.Credentials {
			if out.Credentials[k].ID == active.ID {
				out.Credentials[k].ExpiryWarnTime = &c.End
			}
		}
	}
	if d.correct {
		if err := s.correctExpiry(ctx, tx, c, &out); err != nil {
			return Result{}, err
		}
	}
	for _, typ := range d.events {
		if err := notify(eventOf(typ, c, in, active)); err != nil {
			return Result{}, err
		}
	}
	// A propagating verdict is final when its settle window ends: the
	// re-check then is queued with it (one per integration and window end).
	if err := s.queueSettle(ctx, tx, c); err != nil {
		return Result{}, fmt.Errorf("queueing the settle re-check: %w", err)
	}
	return Result{Check: c, Integration: out, Previous: in.State, Warned: d.warn}, nil
}

// recordGroup records scheduled checks together, each as record would on
// its own, with one statement per kind of write for the whole group:
//
//  1. The fast path: checks whose record decide would find neither stale
//     nor warning nor correcting (expectation, judged on the integration
//     as the check read it) are written in one statement, each only if
//     its expectations still hold (Store.RecordExpectedMany): the check
//     row, the last check time and the state; when some of them change
//     the state, in a transaction that also queues their state-change
//     events (one statement for the deliveries).
//  2. The others, and those whose expectations no longer held, in one
//     transaction: their integrations read and locked (one statement, ID
//     order), the check rows written (one), each decided here (decide:
//     stale, new state, expiry warning, events), the verdicts of the
//     non-stale ones set (one), then each warning marked and each event
//     queued in the same transaction.
//
// A check whose integration is gone gets NotFound and nothing is written
// for it; an error of the transaction is every one of its checks' error
// (nothing of it was written: the sweep checks them again).
func (s *Service) recordGroup(ctx context.Context, ps []Pending) ([]Result, []error) {
	rs := make([]Result, len(ps))
	errs := make([]error, len(ps))
	var es []Expected
	var fastAt []int
	events := false
	for k, p := range ps {
		if e, ok := expectation(p.Check, p.loaded); ok {
			es = append(es, e)
			fastAt = append(fastAt, k)
			events = events || e.changes()
		}
	}
	done := make(map[int]bool, len(es))
	if len(es) > 0 {
		// One statement; with state changes among the checks, in a
		// transaction that also queues their events (one statement for
		// their deliveries), so that a recorded change is announced.
		var written []uuid.UUID
		write := func(ctx context.Context, tx uow.Tx) error {
			var err error
			if written, err = s.store.RecordExpectedMany(ctx, tx, es); err != nil || !events {
				return err
			}
			ok := make(map[uuid.UUID]bool, len(written))
			for _, id := range written {
				ok[id] = true
			}
			q := s.eventsIn(tx)
			for j, e := range es {
				c := e.Check
				if !e.changes() || !ok[c.ID] {
					continue
				}
				// decide's events on the integration as read, which the
				// expectations held: the state change only.
				in := ps[fastAt[j]].loaded
				active, _ := in.Active()
				if err := q.add(ctx, c.Org, eventOf(event.StateChanged, c, in, active)); err != nil {
					return err
				}
			}
			return q.flush(ctx)
		}
		var err error
		if events {
			err = s.tx.InTx(ctx, write)
		} else {
			err = write(ctx, s.tx.Conn())
		}
		if err != nil {
			for _, k := range fastAt {
				errs[k], done[k] = err, true
			}
		}
		ok := make(map[uuid.UUID]bool, len(written))
		for _, id := range written {
			ok[id] = true
		}
		for _, k := range fastAt {
			if err == nil && ok[ps[k].Check.ID] {
				c := ps[k].Check
				in := ps[k].loaded
				prev := in.State
				in.LastCheckTime = &c.End
				if in.State != c.Outcome {
					in.State, in.StateChangeTime = c.Outcome, &c.End
				}
				rs[k], done[k] = Result{Check: c, Integration: in, Previous: prev}, true
			}
		}
	}
	var full []int
	for k := range ps {
		if !done[k] {
			full = append(full, k)
		}
	}
	if len(full) == 0 {
		return rs, errs
	}
	out := make(map[int]Result, len(full))
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		clear(out)
		refs := make([]Ref, len(full))
		for j, k := range full {
			refs[j] = Ref{Org: ps[k].Check.Org, ID: ps[k].Check.Integration}
		}
		locked, err := s.store.LockIntegrations(ctx, tx, refs)
		if err != nil {
			return err
		}
		byID := make(map[Ref]integration.Integration, len(locked))
		for _, in := range locked {
			byID[Ref{Org: in.Org, ID: in.ID}] = in
		}
		var (
			cs       []Check
			verdicts []Verdict
			present  []int
		)
		for _, k := range full {
			c := ps[k].Check
			if _, ok := byID[Ref{Org: c.Org, ID: c.Integration}]; !ok {
				continue
			}
			cs = append(cs, c)
			present = append(present, k)
		}
		if err := s.store.InsertChecks(ctx, tx, cs); err != nil {
			return err
		}
		decided := make(map[int]decision, len(present))
		for _, k := range present {
			c := ps[k].Check
			in := byID[Ref{Org: c.Org, ID: c.Integration}]
			d := decide(c, in)
			if d.stale {
				out[k] = Result{Check: c, Integration: in, Previous: c.Outcome}
				continue
			}
			decided[k] = d
			verdicts = append(verdicts, Verdict{Org: c.Org, ID: c.Integration, State: c.Outcome, CheckTime: c.End})
		}
		set, err := s.store.SetIntegrationStates(ctx, tx, verdicts)
		if err != nil {
			return err
		}
		setByID := make(map[Ref]integration.Integration, len(set))
		for _, in := range set {
			setByID[Ref{Org: in.Org, ID: in.ID}] = in
		}
		q := s.eventsIn(tx)
		for _, k := range present {
			d, ok := decided[k]
			if !ok {
				continue
			}
			c := ps[k].Check
			ref := Ref{Org: c.Org, ID: c.Integration}
			r, err := s.apply(ctx, tx, c, byID[ref], setByID[ref], d, func(ev event.Event) error { return q.add(ctx, c.Org, ev) })
			if err != nil {
				return err
			}
			out[k] = r
		}
		return q.flush(ctx)
	})
	for _, k := range full {
		switch r, ok := out[k]; {
		case err != nil:
			errs[k] = err
		case !ok:
			errs[k] = apperr.New(apperr.NotFound, "integration %s not found", ps[k].Check.Integration)
		default:
			rs[k] = r
		}
	}
	return rs, errs
}

// eventOf is the body of one event about c. A credential-expiring event
// also names the credential and carries the days left and the remedy (the
// expiry step's: the exact steps to replace the secret).
func eventOf(typ string, c Check, in integration.Integration, active integration.Credential) event.Event {
	if m := c.ExpiryMismatch; m != nil && m.Credential == active.ID {
		active.EndTime = &m.Entra // judged by Entra's date (entra_expiry.go)
	}
	name := resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String()
	ev := event.Event{
		Type: typ, Time: c.End, Organization: resource.Org{Org: c.Org}.String(),
		Integration: name, Kind: string(in.Kind), PreviousState: string(in.State), State: string(c.Outcome),
		Check: checkName(c), Summary: c.Summary, CredentialExpireTime: active.EndTime,
	}
	if typ == event.CredentialExpiryMismatch && c.ExpiryMismatch != nil {
		entra := c.ExpiryMismatch.Entra
		ev.Credential = name + "/credentials/" + active.ID.String()
		ev.CredentialExpireTime, ev.RecordedExpireTime = &entra, c.ExpiryMismatch.Recorded
		ev.Summary = "the credential's expiry date in Entra differs from the recorded one; the record now holds Entra's"
	}
	if typ == event.CredentialExpiring && active.EndTime != nil {
		days := daysLeft(*active.EndTime, c.End)
		ev.Credential = name + "/credentials/" + active.ID.String()
		ev.CredentialDaysLeft = &days
		for _, st := range c.Steps {
			if st.Name == "expiry" {
				ev.Summary, ev.Remedy = st.Message, st.Remedy
			}
		}
	}
	return ev
}
