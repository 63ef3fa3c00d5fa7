package handlers

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

type operations struct {
	v1.UnimplementedOperationServiceServer
	d Deps
}

var operationStates = map[operation.State]v1.OperationState{
	operation.StatePending:   v1.OperationState_OPERATION_STATE_PENDING,
	operation.StateRunning:   v1.OperationState_OPERATION_STATE_RUNNING,
	operation.StateSucceeded: v1.OperationState_OPERATION_STATE_SUCCEEDED,
	operation.StateFailed:    v1.OperationState_OPERATION_STATE_FAILED,
	operation.StateCanceled:  v1.OperationState_OPERATION_STATE_CANCELED,
}

var stepStates = map[operation.StepState]v1.StepState{
	operation.StepPending:   v1.StepState_STEP_STATE_PENDING,
	operation.StepRunning:   v1.StepState_STEP_STATE_RUNNING,
	operation.StepSucceeded: v1.StepState_STEP_STATE_SUCCEEDED,
	operation.StepFailed:    v1.StepState_STEP_STATE_FAILED,
	operation.StepSkipped:   v1.StepState_STEP_STATE_SKIPPED,
	operation.StepCanceled:  v1.StepState_STEP_STATE_CANCELED,
}

// jsonStruct converts a stored JSON object; nil when empty or not an object.
func jsonStruct(raw json.RawMessage) *structpb.Struct {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, s); err != nil {
		return nil
	}
	return s
}

func failureToProto(f *operation.Failure) *v1.OperationError {
	if f == nil {
		return nil
	}
	return &v1.OperationError{Code: f.Code, Reason: f.Reason, Message: f.Message, Remedy: f.Remedy, Step: f.Step}
}

func operationToProto(o operation.Operation) *v1.Operation {
	out := &v1.Operation{
		Name: o.Name(), Kind: o.Kind, Target: o.Target, State: operationStates[o.State], Done: o.Done(),
		CancelRequested: o.CancelRequested, Params: jsonStruct(o.Params),
		CreateTime: ts(o.CreateTime), UpdateTime: ts(o.UpdateTime), EndTime: tsp(o.EndTime), Etag: etag(o.Version),
		Metadata: &v1.OperationMetadata{StepsDone: int32(o.StepsDone), StepsTotal: int32(o.StepsTotal), PercentDone: int32(o.Percent())},
	}
	switch {
	case o.State == operation.StateFailed && o.Error != nil:
		out.Outcome = &v1.Operation_Error{Error: failureToProto(o.Error)}
	case o.State == operation.StateSucceeded:
		r := jsonStruct(o.Result)
		if r == nil {
			r = &structpb.Struct{}
		}
		out.Outcome = &v1.Operation_Result{Result: r}
	}
	for _, s := range o.Steps {
		out.Metadata.Steps = append(out.Metadata.Steps, &v1.OperationStep{
			Name: s.Name, State: stepStates[s.State], Attempts: int32(s.Attempts),
			StartTime: tsp(s.StartTime), EndTime: tsp(s.EndTime), NextAttemptTime: tsp(s.NextAttemptTime),
			LastError: failureToProto(s.LastError), Outputs: jsonStruct(s.Outputs),
			Polls: int32(s.Polls), Observation: s.Observation, PollDeadline: tsp(s.PollDeadline),
		})
	}
	return out
}

func (h *operations) GetOperation(ctx context.Context, req *v1.GetOperationRequest) (*v1.GetOperationResponse, error) {
	n, err := operation.ParseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	op, err := h.d.Operations.Get(ctx, n.Org, n.ID)
	if err != nil {
		return nil, err
	}
	return &v1.GetOperationResponse{Operation: operationToProto(op)}, nil
}

func (h *operations) ListOperations(ctx context.Context, req *v1.ListOperationsRequest) (*v1.ListOperationsResponse, error) {
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	f, err := operation.ParseFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	p, err := parsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent(), f.String())
	if err != nil {
		return nil, err
	}
	rows, err := h.d.Operations.List(ctx, parent.Org, f, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListOperationsResponse{}
	for _, o := range rows {
		resp.Operations = append(resp.Operations, operationToProto(o))
	}
	if more {
		resp.NextPageToken = page.Next(rows[len(rows)-1].ID, req.GetParent(), f.String())
	}
	return resp, nil
}

func (h *operations) CancelOperation(ctx context.Context, req *v1.CancelOperationRequest) (*v1.CancelOperationResponse, error) {
	n, err := operation.ParseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	op, err := h.d.Operations.Cancel(ctx, n.Org, n.ID)
	if err != nil {
		return nil, err
	}
	return &v1.CancelOperationResponse{Operation: operationToProto(op)}, nil
}

// maxWait is the longest WaitOperation timeout accepted.
const maxWait = 60 * time.Second

func (h *operations) WaitOperation(ctx context.Context, req *v1.WaitOperationRequest) (*v1.WaitOperationResponse, error) {
	var v apperr.Violations
	n, err := operation.ParseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	var timeout time.Duration
	if t := req.GetTimeout(); t != nil {
		timeout = t.AsDuration()
		v.Check(t.IsValid() && timeout > 0 && timeout <= maxWait, "timeout", "must be more than 0s and at most 60s")
	}
	version := parseEtag(&v, "etag", req.GetEtag())
	if err := v.Err(); err != nil {
		return nil, err
	}
	op, err := h.d.Operations.Wait(ctx, n.Org, n.ID, timeout, version)
	if err != nil {
		return nil, err
	}
	return &v1.WaitOperationResponse{Operation: operationToProto(op)}, nil
}
