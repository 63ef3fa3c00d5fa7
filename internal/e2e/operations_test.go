package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/postgres"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

// opHarness starts operations of a test-only kind in a stack's database
// (no RPC starts operations yet) and runs them with a test-side River
// client: the server under test serves the API.
type opHarness struct {
	s     *stack.Stack
	db    *postgres.DB
	kinds *operation.Registry
	svc   *operation.Service
	gate  chan struct{}
}

func newOpHarness(t *testing.T, s *stack.Stack) *opHarness {
	t.Helper()
	h := &opHarness{s: s, db: postgres.New(s.DB), kinds: operation.NewRegistry(), gate: make(chan struct{})}
	step := func(name string) operation.Step {
		return operation.Step{Name: name, Run: func(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
			if name == "create-thing" {
				select {
				case <-h.gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return operation.Outputs{"object_id": name + "-id"}, nil
		}}
	}
	h.kinds.MustRegister(operation.Kind{Name: "test.steps", Steps: []operation.Step{step("prepare"), step("create-thing"), step("verify")}})
	ins, err := jobs.NewInserter(s.DB)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = operation.NewService(operation.Config{}, h.db, h.db, h.kinds, ins, postgres.NewOperationListener(h.db, slog.New(slog.DiscardHandler)), h.db, webhook.NewNotifier(h.db, ins, 0))
	return h
}

// start starts an operation in org (a name) and returns its name.
func (h *opHarness) start(t *testing.T, org string) string {
	t.Helper()
	o, err := resource.ParseOrg("org", org)
	if err != nil {
		t.Fatal(err)
	}
	var op operation.Operation
	if err := h.db.InTx(context.Background(), func(ctx context.Context, tx uow.Tx) error {
		op, err = h.svc.Start(ctx, tx, operation.Spec{Org: o.Org, Kind: "test.steps", Target: org + "/tenants/" + uuid.NewString()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return op.Name()
}

// replica runs operations until the test ends.
func (h *opHarness) replica(t *testing.T) {
	t.Helper()
	ins, err := jobs.NewInserter(h.s.DB)
	if err != nil {
		t.Fatal(err)
	}
	runner := operation.NewRunner(operation.Config{}, h.db, h.db, h.kinds, ins, webhook.NewNotifier(h.db, ins, 0), slog.New(slog.DiscardHandler))
	w := river.NewWorkers()
	runner.Extension().Register(w)
	c, err := river.NewClient(riverpgxv5.New(h.s.DB), &river.Config{Logger: slog.New(slog.DiscardHandler),
		Queues: map[string]river.QueueConfig{operation.QueueOperations: {MaxWorkers: 2}}, Workers: w,
		FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.StopAndCancel(ctx)
	})
}

func TestOperationsAPI(t *testing.T) {
	t.Parallel()
	// The server runs no operations: it does not know the test's kind (a
	// replica that does not know a kind leaves its operations for others);
	// the test's own replica runs them.
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--operation-workers", "0"}})
	a := s.NewOrg(t, "Ops")
	h := newOpHarness(t, s)
	ops := v1.NewOperationServiceClient(s.Conn)
	h.replica(t)
	name := h.start(t, a.Name)
	other := h.start(t, a.Name)

	// Wait with an etag returns on each change until create-thing runs.
	var cur *v1.Operation
	for cur == nil || cur.GetMetadata().GetSteps()[1].GetState() != v1.StepState_STEP_STATE_RUNNING {
		r, err := ops.WaitOperation(a.ViewerCtx, &v1.WaitOperationRequest{Name: name, Etag: cur.GetEtag(), Timeout: durationpb.New(10 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if cur != nil && r.GetOperation().GetEtag() == cur.GetEtag() {
			t.Fatal("etag wait returned without a change")
		}
		cur = r.GetOperation()
	}
	if cur.GetState() != v1.OperationState_OPERATION_STATE_RUNNING || cur.GetDone() || cur.GetKind() != "test.steps" ||
		cur.GetMetadata().GetStepsDone() != 1 || cur.GetMetadata().GetStepsTotal() != 3 || cur.GetMetadata().GetPercentDone() != 33 ||
		cur.GetMetadata().GetSteps()[0].GetOutputs().GetFields()["object_id"].GetStringValue() != "prepare-id" {
		t.Fatalf("running operation: %v", cur)
	}

	// A timed-out wait returns the operation, not done.
	t0 := time.Now()
	w, err := ops.WaitOperation(a.ViewerCtx, &v1.WaitOperationRequest{Name: name, Timeout: durationpb.New(200 * time.Millisecond)})
	if err != nil || w.GetOperation().GetDone() || time.Since(t0) < 200*time.Millisecond {
		t.Fatalf("timed-out wait: %v %v", w, err)
	}

	// List with filters.
	l, err := ops.ListOperations(a.ViewerCtx, &v1.ListOperationsRequest{Parent: a.Name, Filter: `kind = "test.steps" AND state = RUNNING`})
	if err != nil || len(l.GetOperations()) == 0 {
		t.Fatalf("list running: %v %v", l, err)
	}
	l, err = ops.ListOperations(a.ViewerCtx, &v1.ListOperationsRequest{Parent: a.Name, Filter: `target = "` + cur.GetTarget() + `"`})
	if err != nil || len(l.GetOperations()) != 1 || l.GetOperations()[0].GetName() != name {
		t.Fatalf("list by target: %v %v", l, err)
	}
	p1, err := ops.ListOperations(a.ViewerCtx, &v1.ListOperationsRequest{Parent: a.Name, PageSize: 1})
	if err != nil || len(p1.GetOperations()) != 1 || p1.GetOperations()[0].GetName() != other || p1.GetNextPageToken() == "" {
		t.Fatalf("page 1 (newest first): %v %v", p1, err)
	}
	p2, err := ops.ListOperations(a.ViewerCtx, &v1.ListOperationsRequest{Parent: a.Name, PageSize: 1, PageToken: p1.GetNextPageToken()})
	if err != nil || len(p2.GetOperations()) != 1 || p2.GetOperations()[0].GetName() != name {
		t.Fatalf("page 2: %v %v", p2, err)
	}
	_, err = ops.ListOperations(a.ViewerCtx, &v1.ListOperationsRequest{Parent: a.Name, PageSize: 1, PageToken: p1.GetNextPageToken(), Filter: "state = FAILED"})
	wantViolation(t, err, "page_token")

	// Invalid input names the field; nothing is written.
	before := countRows(t, s, "audit_events")
	_, err = ops.ListOperations(a.ViewerCtx, &v1.ListOperationsRequest{Parent: a.Name, Filter: "state = DONE"})
	wantViolation(t, err, "filter")
	_, err = ops.GetOperation(a.ViewerCtx, &v1.GetOperationRequest{Name: a.Name + "/operations/nope"})
	wantViolation(t, err, "name")
	_, err = ops.CancelOperation(a.OperatorCtx, &v1.CancelOperationRequest{Name: a.Name + "/tenants/" + uuid.NewString()})
	wantViolation(t, err, "name")
	_, err = ops.WaitOperation(a.ViewerCtx, &v1.WaitOperationRequest{Name: name, Timeout: durationpb.New(2 * time.Minute)})
	wantViolation(t, err, "timeout")
	_, err = ops.WaitOperation(a.ViewerCtx, &v1.WaitOperationRequest{Name: name, Etag: "x"})
	wantViolation(t, err, "etag")
	_, err = ops.GetOperation(a.ViewerCtx, &v1.GetOperationRequest{Name: a.Name + "/operations/" + uuid.NewString()})
	wantCode(t, err, codes.NotFound)
	_, err = ops.CancelOperation(a.ViewerCtx, &v1.CancelOperationRequest{Name: name})
	wantCode(t, err, codes.PermissionDenied)
	if n := countRows(t, s, "audit_events"); n != before {
		t.Fatalf("refused calls wrote %d audit events", n-before)
	}

	// Cancel over REST while create-thing runs: it stops at the boundary.
	req, _ := http.NewRequest(http.MethodPost, s.HTTPURL+"/v1/"+name+":cancel", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+a.Operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"cancelRequested":true`) {
		t.Fatalf("REST cancel: %d %s", resp.StatusCode, body)
	}
	close(h.gate)
	// REST GET :wait until done.
	var got struct {
		Operation struct {
			Done     bool   `json:"done"`
			State    string `json:"state"`
			Metadata struct {
				Steps []struct {
					Name    string         `json:"name"`
					State   string         `json:"state"`
					Outputs map[string]any `json:"outputs"`
				} `json:"steps"`
			} `json:"metadata"`
		} `json:"operation"`
	}
	for !got.Operation.Done {
		req, _ = http.NewRequest(http.MethodGet, s.HTTPURL+"/v1/"+name+":wait?timeout=10s", nil)
		req.Header.Set("Authorization", "Bearer "+a.Viewer)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("REST wait: %d %v", resp.StatusCode, err)
		}
	}
	st := got.Operation.Metadata.Steps
	if got.Operation.State != "OPERATION_STATE_CANCELED" || len(st) != 3 || st[1].State != "STEP_STATE_SUCCEEDED" ||
		st[1].Outputs["object_id"] != "create-thing-id" || st[2].State != "STEP_STATE_CANCELED" {
		t.Fatalf("canceled operation: %+v", got.Operation)
	}
	// The other operation ran to the end: canceling it is FailedPrecondition.
	for done := false; !done; { // a wait may time out on a loaded machine: wait again
		w, err := ops.WaitOperation(a.ViewerCtx, &v1.WaitOperationRequest{Name: other})
		if err != nil {
			t.Fatal(err)
		}
		done = w.GetOperation().GetDone()
	}
	_, err = ops.CancelOperation(a.OperatorCtx, &v1.CancelOperationRequest{Name: other})
	wantCode(t, err, codes.FailedPrecondition)
	c, err := ops.CancelOperation(a.OperatorCtx, &v1.CancelOperationRequest{Name: name})
	if err != nil || c.GetOperation().GetState() != v1.OperationState_OPERATION_STATE_CANCELED {
		t.Fatalf("cancel a canceled operation: %v %v", c, err)
	}
}
