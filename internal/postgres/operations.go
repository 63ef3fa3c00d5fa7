package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

var _ operation.Store = (*DB)(nil)

func nullUUID(id uuid.UUID) uuid.NullUUID { return uuid.NullUUID{UUID: id, Valid: id != uuid.Nil} }

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func operationFrom(r query.Operation) operation.Operation {
	op := operation.Operation{
		Org: r.OrganizationID, ID: r.ID, Kind: r.Kind, Target: r.Target, State: operation.State(r.State),
		CancelRequested: r.CancelRequested, Params: r.Params, Result: r.Result, RequestID: r.RequestID.UUID,
		StepsTotal: int(r.StepsTotal), StepsDone: int(r.StepsDone), LeaseOwner: r.LeaseOwner.UUID,
		LeaseExpireTime: r.LeaseExpireTime, CreateTime: r.CreateTime, UpdateTime: r.UpdateTime, EndTime: r.EndTime,
		Version: r.Version, Incarnation: int(r.Incarnation),
	}
	if r.ErrorCode != nil || r.ErrorMessage != nil {
		op.Error = &operation.Failure{Code: deref(r.ErrorCode), Reason: deref(r.ErrorClass), Message: deref(r.ErrorMessage),
			Remedy: deref(r.ErrorRemedy), Step: deref(r.ErrorStep)}
	}
	return op
}

func stepFrom(r query.OperationStep) operation.StepRecord {
	s := operation.StepRecord{
		Ordinal: int(r.Ordinal), Name: r.Name, State: operation.StepState(r.State), Attempts: int(r.Attempts),
		StartTime: r.StartTime, EndTime: r.EndTime, NextAttemptTime: r.NextAttemptTime, Outputs: r.Outputs,
		Polls: int(r.Polls), PollDeadline: r.PollDeadline, Observation: deref(r.Observation),
	}
	if r.ErrorCode != nil || r.ErrorMessage != nil {
		s.LastError = &operation.Failure{Code: deref(r.ErrorCode), Reason: deref(r.ErrorClass), Message: deref(r.ErrorMessage),
			Remedy: deref(r.ErrorRemedy)}
	}
	return s
}

func (db *DB) withSteps(ctx context.Context, tx uow.Tx, op operation.Operation) (operation.Operation, error) {
	rows, err := queries.ListOperationSteps(ctx, q(tx), query.ListOperationStepsParams{OrganizationID: op.Org, OperationID: op.ID})
	if err != nil {
		return op, translate(err, "")
	}
	op.Steps = make([]operation.StepRecord, 0, len(rows))
	for _, r := range rows {
		op.Steps = append(op.Steps, stepFrom(r))
	}
	return op, nil
}

// InsertOperation implements operation.Store.
func (db *DB) InsertOperation(ctx context.Context, tx uow.Tx, op operation.Operation, steps []string) (operation.Operation, error) {
	r, err := queries.InsertOperation(ctx, q(tx), query.InsertOperationParams{
		OrganizationID: op.Org, ID: op.ID, Kind: op.Kind, Target: op.Target, Params: op.Params,
		RequestID: nullUUID(op.RequestID), StepsTotal: int32(len(steps)),
	})
	if err != nil {
		return operation.Operation{}, translate(err, "")
	}
	if err := queries.InsertOperationSteps(ctx, q(tx), query.InsertOperationStepsParams{
		OrganizationID: op.Org, OperationID: op.ID, Names: steps,
	}); err != nil {
		return operation.Operation{}, translate(err, "")
	}
	return db.withSteps(ctx, tx, operationFrom(r))
}

// GetOperation implements operation.Store.
func (db *DB) GetOperation(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (operation.Operation, error) {
	r, err := queries.GetOperationWithSteps(ctx, q(tx), query.GetOperationWithStepsParams{OrganizationID: org, ID: id})
	if err != nil {
		return operation.Operation{}, translate(err, operation.Name{Org: org, ID: id}.String())
	}
	return withJSONSteps(operationFrom(r.Operation), r.Steps)
}

// OperationVersion implements operation.Store.
func (db *DB) OperationVersion(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (int64, operation.State, error) {
	r, err := queries.GetOperationVersion(ctx, q(tx), query.GetOperationVersionParams{OrganizationID: org, ID: id})
	if err != nil {
		return 0, "", translate(err, operation.Name{Org: org, ID: id}.String())
	}
	return r.Version, operation.State(r.State), nil
}

// LockOperation implements operation.Store: the row and its steps in one
// statement (every runner record starts with it).
func (db *DB) LockOperation(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (operation.Operation, time.Time, error) {
	r, err := queries.LockOperationWithSteps(ctx, q(tx), query.LockOperationWithStepsParams{OrganizationID: org, ID: id})
	if err != nil {
		return operation.Operation{}, time.Time{}, translate(err, operation.Name{Org: org, ID: id}.String())
	}
	op, err := withJSONSteps(operationFrom(r.Operation), r.Steps)
	return op, r.DbNow, err
}

// stepJSON is an operation_steps row as JSON: as to_jsonb writes it
// (GetOperationWithSteps, LockOperationWithSteps), and its mutable fields
// as WriteOperation's @steps carries them (jsonb_to_recordset's column
// names; absent: null; the name is not written).
type stepJSON struct {
	Ordinal         int32           `json:"ordinal"`
	Name            string          `json:"name,omitempty"`
	State           string          `json:"state"`
	Attempts        int32           `json:"attempts"`
	StartTime       *time.Time      `json:"start_time,omitempty"`
	EndTime         *time.Time      `json:"end_time,omitempty"`
	NextAttemptTime *time.Time      `json:"next_attempt_time,omitempty"`
	ErrorCode       *string         `json:"error_code,omitempty"`
	ErrorClass      *string         `json:"error_class,omitempty"`
	ErrorMessage    *string         `json:"error_message,omitempty"`
	ErrorRemedy     *string         `json:"error_remedy,omitempty"`
	Outputs         json.RawMessage `json:"outputs,omitempty"`
	Polls           int32           `json:"polls"`
	PollDeadline    *time.Time      `json:"poll_deadline,omitempty"`
	Observation     *string         `json:"observation,omitempty"`
}

// withJSONSteps sets op's steps from their JSON array.
func withJSONSteps(op operation.Operation, steps json.RawMessage) (operation.Operation, error) {
	var rows []stepJSON
	if err := json.Unmarshal(steps, &rows); err != nil {
		return op, fmt.Errorf("decoding the steps of operation %s: %w", op.Name(), err)
	}
	// In time.Local, as pgx scans a timestamptz column.
	local := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.Local()
		return &u
	}
	op.Steps = make([]operation.StepRecord, 0, len(rows))
	for _, r := range rows {
		op.Steps = append(op.Steps, stepFrom(query.OperationStep{
			Ordinal: r.Ordinal, Name: r.Name, State: r.State, Attempts: r.Attempts, StartTime: local(r.StartTime), EndTime: local(r.EndTime),
			NextAttemptTime: local(r.NextAttemptTime), ErrorCode: r.ErrorCode, ErrorClass: r.ErrorClass, ErrorMessage: r.ErrorMessage,
			ErrorRemedy: r.ErrorRemedy, Outputs: r.Outputs, Polls: r.Polls, PollDeadline: local(r.PollDeadline), Observation: r.Observation,
		}))
	}
	return op, nil
}

// ListOperations implements operation.Store.
func (db *DB) ListOperations(ctx context.Context, tx uow.Tx, org uuid.UUID, f operation.Filter, p page.Request) ([]operation.Operation, error) {
	rows, err := queries.ListOperations(ctx, q(tx), query.ListOperationsParams{
		OrganizationID: org, Before: nullUUID(p.After), State: strp(string(f.State)), Kind: strp(f.Kind), Target: strp(f.Target),
		Lim: int32(p.Size + 1),
	})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]operation.Operation, 0, len(rows))
	ids := make([]uuid.UUID, 0, len(rows))
	index := map[uuid.UUID]int{}
	for _, r := range rows {
		index[r.ID] = len(out)
		ids = append(ids, r.ID)
		out = append(out, operationFrom(r))
	}
	if len(ids) == 0 {
		return out, nil
	}
	steps, err := queries.ListStepsOfOperations(ctx, q(tx), query.ListStepsOfOperationsParams{OrganizationID: org, OperationIds: ids})
	if err != nil {
		return nil, translate(err, "")
	}
	for _, s := range steps {
		i := index[s.OperationID]
		out[i].Steps = append(out[i].Steps, stepFrom(s))
	}
	return out, nil
}

// UpdateOperation implements operation.Store.
func (db *DB) UpdateOperation(ctx context.Context, tx uow.Tx, op operation.Operation) (operation.Operation, error) {
	p := query.UpdateOperationParams{
		OrganizationID: op.Org, ID: op.ID, State: string(op.State), CancelRequested: op.CancelRequested, Result: op.Result,
		StepsDone: int32(op.StepsDone), EndTime: op.EndTime, LeaseOwner: nullUUID(op.LeaseOwner), LeaseExpireTime: op.LeaseExpireTime,
	}
	if e := op.Error; e != nil {
		p.ErrorCode, p.ErrorClass, p.ErrorMessage, p.ErrorRemedy, p.ErrorStep = strp(e.Code), strp(e.Reason), strp(e.Message), strp(e.Remedy), strp(e.Step)
	}
	r, err := queries.UpdateOperation(ctx, q(tx), p)
	if err != nil {
		return operation.Operation{}, translate(err, op.Name())
	}
	return operationFrom(r), nil
}

// UpdateStep implements operation.Store.
func (db *DB) UpdateStep(ctx context.Context, tx uow.Tx, org, id uuid.UUID, s operation.StepRecord) error {
	outputs := s.Outputs
	if len(outputs) == 0 {
		outputs = json.RawMessage(`{}`)
	}
	p := query.UpdateOperationStepParams{
		OrganizationID: org, OperationID: id, Ordinal: int32(s.Ordinal), State: string(s.State), Attempts: int32(s.Attempts),
		StartTime: s.StartTime, EndTime: s.EndTime, NextAttemptTime: s.NextAttemptTime, Outputs: outputs,
		Polls: int32(s.Polls), PollDeadline: s.PollDeadline, Observation: strp(s.Observation),
	}
	if e := s.LastError; e != nil {
		p.ErrorCode, p.ErrorClass, p.ErrorMessage, p.ErrorRemedy = strp(e.Code), strp(e.Reason), strp(e.Message), strp(e.Remedy)
	}
	return translate(queries.UpdateOperationStep(ctx, q(tx), p), "")
}

// micros truncates t to Postgres' precision, as pgx's binary encoding does
// (a timestamp read from JSON text would be rounded instead).
func micros(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.Truncate(time.Microsecond)
	return &u
}

// WriteOperation implements operation.Store: UpdateStep for each of steps
// and UpdateOperation, in one statement.
func (db *DB) WriteOperation(ctx context.Context, tx uow.Tx, op operation.Operation, steps []operation.StepRecord, fence *operation.Fence) (operation.Operation, error) {
	rows := make([]stepJSON, len(steps))
	for i, s := range steps {
		r := stepJSON{Ordinal: int32(s.Ordinal), State: string(s.State), Attempts: int32(s.Attempts), StartTime: micros(s.StartTime), EndTime: micros(s.EndTime),
			NextAttemptTime: micros(s.NextAttemptTime), Outputs: s.Outputs, Polls: int32(s.Polls), PollDeadline: micros(s.PollDeadline),
			Observation: strp(s.Observation)}
		if len(r.Outputs) == 0 {
			r.Outputs = json.RawMessage(`{}`)
		}
		if e := s.LastError; e != nil {
			r.ErrorCode, r.ErrorClass, r.ErrorMessage, r.ErrorRemedy = strp(e.Code), strp(e.Reason), strp(e.Message), strp(e.Remedy)
		}
		rows[i] = r
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return operation.Operation{}, fmt.Errorf("encoding operation steps: %w", err)
	}
	p := query.WriteOperationParams{
		Steps: b, OrganizationID: op.Org, ID: op.ID, State: string(op.State), CancelRequested: op.CancelRequested, Result: op.Result,
		StepsDone: int32(op.StepsDone), EndTime: op.EndTime, LeaseOwner: nullUUID(op.LeaseOwner), LeaseExpireTime: op.LeaseExpireTime,
	}
	if e := op.Error; e != nil {
		p.ErrorCode, p.ErrorClass, p.ErrorMessage, p.ErrorRemedy, p.ErrorStep = strp(e.Code), strp(e.Reason), strp(e.Message), strp(e.Remedy), strp(e.Step)
	}
	if fence != nil {
		v := fence.Version
		p.FenceVersion, p.FenceOwner = &v, nullUUID(fence.Owner)
	}
	r, err := queries.WriteOperation(ctx, q(tx), p)
	if fence != nil && errors.Is(err, pgx.ErrNoRows) {
		return operation.Operation{}, operation.ErrFenced
	}
	if err != nil {
		return operation.Operation{}, translate(err, op.Name())
	}
	return operationFrom(query.Operation(r)), nil
}

// SetLease implements operation.Store.
func (db *DB) SetLease(ctx context.Context, tx uow.Tx, org, id, owner uuid.UUID, until *time.Time) error {
	return translate(queries.SetOperationLease(ctx, q(tx), query.SetOperationLeaseParams{
		OrganizationID: org, ID: id, LeaseOwner: nullUUID(owner), LeaseExpireTime: until,
	}), "")
}

// RenewLease implements operation.Store.
func (db *DB) RenewLease(ctx context.Context, tx uow.Tx, org, id, owner uuid.UUID, d time.Duration) (bool, error) {
	n, err := queries.RenewOperationLease(ctx, q(tx), query.RenewOperationLeaseParams{
		OrganizationID: org, ID: id, LeaseOwner: nullUUID(owner), Seconds: d.Seconds(),
	})
	return n == 1, translate(err, "")
}

// ListStaleOperations implements operation.Store.
func (db *DB) ListStaleOperations(ctx context.Context, tx uow.Tx, idle time.Duration, limit int) ([]operation.Name, error) {
	rows, err := queries.ListStaleOperations(ctx, q(tx), query.ListStaleOperationsParams{IdleSeconds: idle.Seconds(), Lim: int32(limit)})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]operation.Name, 0, len(rows))
	for _, r := range rows {
		out = append(out, operation.Name{Org: r.OrganizationID, ID: r.ID})
	}
	return out, nil
}

// SupersedeRun implements operation.Store.
func (db *DB) SupersedeRun(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (int, error) {
	n, err := queries.SupersedeOperationRun(ctx, q(tx), query.SupersedeOperationRunParams{OrganizationID: org, ID: id})
	return int(n), translate(err, operation.Name{Org: org, ID: id}.String())
}

// operationsChannel is the channel the operations trigger notifies
// (migrations/00006_operations.sql; queries.ListenOperations).
const operationsChannel = "dzconnect_operations"

// OperationListener implements operation.Changes with one LISTEN
// connection per replica, shared by every waiter: notifications are fanned
// out by operation. When the connection drops, every waiter is woken (to
// re-read) and the listener reconnects with backoff.
type OperationListener struct {
	db  *DB
	log *slog.Logger

	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

var _ operation.Changes = (*OperationListener)(nil)

// NewOperationListener returns a listener; Run connects and listens.
func NewOperationListener(db *DB, log *slog.Logger) *OperationListener {
	return &OperationListener{db: db, log: log, subs: map[string]map[chan struct{}]struct{}{}}
}

// Subscribe implements operation.Changes.
func (l *OperationListener) Subscribe(org, id uuid.UUID) (<-chan struct{}, func()) {
	key := org.String() + "/" + id.String()
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	if l.subs[key] == nil {
		l.subs[key] = map[chan struct{}]struct{}{}
	}
	l.subs[key][ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.subs[key], ch)
		if len(l.subs[key]) == 0 {
			delete(l.subs, key)
		}
	}
}

func (l *OperationListener) wake(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	notify := func(subs map[chan struct{}]struct{}) {
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default: // already pending: coalesced
			}
		}
	}
	if key != "" {
		notify(l.subs[key])
		return
	}
	for _, subs := range l.subs {
		notify(subs)
	}
}

// Run listens until ctx ends.
func (l *OperationListener) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		l.wake("") // anything may have changed while not listening
		l.log.WarnContext(ctx, "operations listener disconnected; reconnecting", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// listen holds one dedicated connection (not from the pool) in LISTEN.
func (l *OperationListener) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return translate(err, "")
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if err := queries.ListenOperations(ctx, conn); err != nil {
		return translate(err, "")
	}
	l.wake("") // changes before LISTEN took effect
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == operationsChannel && strings.Count(n.Payload, "/") == 1 {
			l.wake(n.Payload)
		}
	}
}
