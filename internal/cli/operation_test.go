package cli_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
)

const fakeOp = "organizations/contoso/operations/op1"

// fakeOperations is an in-memory OperationService: WaitOperation returns
// the next of a scripted sequence of operation states.
type fakeOperations struct {
	dzconnectv1.UnimplementedOperationServiceServer
	mu    sync.Mutex
	reqs  []proto.Message
	waits []*dzconnectv1.Operation
}

func (f *fakeOperations) record(m proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, proto.Clone(m))
}

func opSteps(states ...dzconnectv1.StepState) []*dzconnectv1.OperationStep {
	names := []string{"register-app", "service-principal", "verify"}
	var out []*dzconnectv1.OperationStep
	for i, s := range states {
		st := &dzconnectv1.OperationStep{Name: names[i], State: s}
		if s != dzconnectv1.StepState_STEP_STATE_PENDING {
			st.Attempts = 1
		}
		if s == dzconnectv1.StepState_STEP_STATE_SUCCEEDED {
			st.Outputs, _ = structpb.NewStruct(map[string]any{"object_id": names[i] + " id"})
		}
		out = append(out, st)
	}
	return out
}

func fakeOperation(etag string, state dzconnectv1.OperationState, done int32, steps ...dzconnectv1.StepState) *dzconnectv1.Operation {
	return &dzconnectv1.Operation{Name: fakeOp, Kind: "provision-integration", State: state, Etag: etag, CreateTime: fixedTime,
		Done:     state >= dzconnectv1.OperationState_OPERATION_STATE_SUCCEEDED,
		Metadata: &dzconnectv1.OperationMetadata{Steps: opSteps(steps...), StepsDone: done, StepsTotal: 3, PercentDone: done * 100 / 3}}
}

func (f *fakeOperations) GetOperation(_ context.Context, req *dzconnectv1.GetOperationRequest) (*dzconnectv1.GetOperationResponse, error) {
	f.record(req)
	return &dzconnectv1.GetOperationResponse{Operation: fakeOperation("1", dzconnectv1.OperationState_OPERATION_STATE_RUNNING, 1,
		dzconnectv1.StepState_STEP_STATE_SUCCEEDED, dzconnectv1.StepState_STEP_STATE_RUNNING, dzconnectv1.StepState_STEP_STATE_PENDING)}, nil
}

func (f *fakeOperations) ListOperations(_ context.Context, req *dzconnectv1.ListOperationsRequest) (*dzconnectv1.ListOperationsResponse, error) {
	f.record(req)
	return &dzconnectv1.ListOperationsResponse{Operations: []*dzconnectv1.Operation{fakeOperation("1", dzconnectv1.OperationState_OPERATION_STATE_RUNNING, 1,
		dzconnectv1.StepState_STEP_STATE_SUCCEEDED, dzconnectv1.StepState_STEP_STATE_RUNNING, dzconnectv1.StepState_STEP_STATE_PENDING)}}, nil
}

func (f *fakeOperations) CancelOperation(_ context.Context, req *dzconnectv1.CancelOperationRequest) (*dzconnectv1.CancelOperationResponse, error) {
	f.record(req)
	o := fakeOperation("2", dzconnectv1.OperationState_OPERATION_STATE_RUNNING, 1,
		dzconnectv1.StepState_STEP_STATE_SUCCEEDED, dzconnectv1.StepState_STEP_STATE_RUNNING, dzconnectv1.StepState_STEP_STATE_PENDING)
	o.CancelRequested = true
	return &dzconnectv1.CancelOperationResponse{Operation: o}, nil
}

func (f *fakeOperations) WaitOperation(_ context.Context, req *dzconnectv1.WaitOperationRequest) (*dzconnectv1.WaitOperationResponse, error) {
	f.record(req)
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.waits[0]
	if len(f.waits) > 1 {
		f.waits = f.waits[1:]
	}
	return &dzconnectv1.WaitOperationResponse{Operation: o}, nil
}

func runOperationCLI(t *testing.T, f *fakeOperations, args ...string) result {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	dzconnectv1.RegisterOperationServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	defer s.Stop()
	var stdout, stderr bytes.Buffer
	env := map[string]string{cli.EnvAddr: "passthrough:///bufnet", cli.EnvAPIKey: testAPIKey}
	app := cli.New(strings.NewReader(""), &stdout, &stderr,
		cli.WithGetenv(func(k string) string { return env[k] }),
		cli.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })),
	)
	return result{code: app.Execute(t.Context(), args), stdout: stdout.String(), stderr: stderr.String()}
}

func TestOperationWaitShowsStepProgressAndFails(t *testing.T) {
	failed := fakeOperation("4", dzconnectv1.OperationState_OPERATION_STATE_FAILED, 1,
		dzconnectv1.StepState_STEP_STATE_SUCCEEDED, dzconnectv1.StepState_STEP_STATE_FAILED, dzconnectv1.StepState_STEP_STATE_PENDING)
	failed.Outcome = &dzconnectv1.Operation_Error{Error: &dzconnectv1.OperationError{Code: "PERMISSION_DENIED", Reason: "permission-missing",
		Message: "Insufficient privileges", Remedy: "Grant Application.ReadWrite.OwnedBy", Step: "service-principal"}}
	f := &fakeOperations{waits: []*dzconnectv1.Operation{
		fakeOperation("1", dzconnectv1.OperationState_OPERATION_STATE_RUNNING, 0,
			dzconnectv1.StepState_STEP_STATE_RUNNING, dzconnectv1.StepState_STEP_STATE_PENDING, dzconnectv1.StepState_STEP_STATE_PENDING),
		fakeOperation("3", dzconnectv1.OperationState_OPERATION_STATE_RUNNING, 1,
			dzconnectv1.StepState_STEP_STATE_SUCCEEDED, dzconnectv1.StepState_STEP_STATE_RUNNING, dzconnectv1.StepState_STEP_STATE_PENDING),
		failed,
	}}
	r := runOperationCLI(t, f, "operation", "wait", fakeOp)
	if r.code != cli.ExitOperationNotSucceeded {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"[0/3 (0%)] register-app: running (attempt 1)\n",
		`[1/3 (33%)] register-app: succeeded, outputs {"object_id":"register-app id"}`,
		"[1/3 (33%)] service-principal: running (attempt 1)\n",
		"[1/3 (33%)] service-principal: failed\n",
		"Error:             PERMISSION_DENIED (permission-missing) in step service-principal: Insufficient privileges",
		"Remedy:            Grant Application.ReadWrite.OwnedBy",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q in:\n%s", want, r.stdout)
		}
	}
	// Each wait after the first carries the etag it has seen.
	var etags []string
	for _, m := range f.reqs {
		etags = append(etags, m.(*dzconnectv1.WaitOperationRequest).GetEtag())
	}
	if strings.Join(etags, ",") != ",1,3" {
		t.Fatalf("wait etags %v", etags)
	}
}

func TestOperationGetListCancel(t *testing.T) {
	f := &fakeOperations{}
	r := runOperationCLI(t, f, "operation", "get", fakeOp)
	if r.code != 0 || !strings.Contains(r.stdout, "Progress:") || !strings.Contains(r.stdout, "2. service-principal: running (attempt 1)") {
		t.Fatalf("get: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runOperationCLI(t, f, "operation", "list", "--org", "contoso", "--state", "running", "--kind", "provision-integration")
	if r.code != 0 || !strings.Contains(r.stdout, "provision-integration") {
		t.Fatalf("list: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := f.reqs[len(f.reqs)-1].(*dzconnectv1.ListOperationsRequest).GetFilter(); got != `state = OPERATION_STATE_RUNNING AND kind = "provision-integration"` {
		t.Fatalf("filter %q", got)
	}
	r = runOperationCLI(t, f, "operation", "cancel", fakeOp, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"cancelRequested": true`) {
		t.Fatalf("cancel: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runOperationCLI(t, f, "operation", "get", "organizations/contoso/tenants/t"); r.code != cli.ExitUsage {
		t.Fatalf("bad name: exit %d", r.code)
	}
}

func TestOperationWaitShowsPolls(t *testing.T) {
	polling := func(etag string, polls int32, obs string, state dzconnectv1.StepState) *dzconnectv1.Operation {
		opState, done := dzconnectv1.OperationState_OPERATION_STATE_RUNNING, int32(2)
		if state == dzconnectv1.StepState_STEP_STATE_SUCCEEDED {
			opState, done = dzconnectv1.OperationState_OPERATION_STATE_SUCCEEDED, 3
		}
		o := fakeOperation(etag, opState, done, dzconnectv1.StepState_STEP_STATE_SUCCEEDED, dzconnectv1.StepState_STEP_STATE_SUCCEEDED, state)
		v := o.GetMetadata().GetSteps()[2]
		v.Polls, v.Observation, v.PollDeadline = polls, obs, fixedTime
		if state == dzconnectv1.StepState_STEP_STATE_PENDING {
			v.NextAttemptTime = fixedTime
		}
		return o
	}
	f := &fakeOperations{waits: []*dzconnectv1.Operation{
		polling("1", 1, "propagating: 3 of 5 roles in tokens", dzconnectv1.StepState_STEP_STATE_PENDING),
		polling("2", 2, "propagating: 4 of 5 roles in tokens", dzconnectv1.StepState_STEP_STATE_PENDING),
		polling("3", 2, "propagating: 4 of 5 roles in tokens", dzconnectv1.StepState_STEP_STATE_SUCCEEDED),
	}}
	r := runOperationCLI(t, f, "operation", "wait", fakeOp)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"verify: pending, poll 1: propagating: 3 of 5 roles in tokens, next look ",
		"verify: pending, poll 2: propagating: 4 of 5 roles in tokens, next look ",
		"verify: succeeded after 2 polls (last: propagating: 4 of 5 roles in tokens)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q in:\n%s", want, r.stdout)
		}
	}
}
