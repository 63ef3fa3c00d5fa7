package operation

import (
	"context"
	"fmt"

	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// writeFinal writes an operation that has just reached a final state: the
// steps the transition changed, the operation, its kind's end hook
// (Kind.Finished) and its operation.finished event, all in tx, so the
// hook's writes and the event commit if and only if the final state does.
// It returns the operation as written, with its steps. fence: see
// Store.WriteOperation.
func writeFinal(ctx context.Context, tx uow.Tx, store Store, kinds *Registry, events event.Notifier, op Operation, changed []StepRecord, fence *Fence) (Operation, error) {
	if !op.Done() || op.EndTime == nil {
		return Operation{}, fmt.Errorf("operation %s: writeFinal in state %s", op.Name(), op.State)
	}
	out, err := store.WriteOperation(ctx, tx, op, changed, fence)
	if err != nil {
		return Operation{}, err
	}
	out.Steps = op.Steps
	if k, ok := kinds.Get(op.Kind); ok && k.Finished != nil {
		if err := k.Finished(ctx, tx, out); err != nil {
			return Operation{}, fmt.Errorf("the end hook of operation %s: %w", op.Name(), err)
		}
	}
	if err := events.Notify(ctx, tx, op.Org, FinishedEvent(out)); err != nil {
		return Operation{}, fmt.Errorf("queueing the operation.finished event of %s: %w", op.Name(), err)
	}
	return out, nil
}

// FinishedEvent is the operation.finished event of a finished operation:
// its name, kind, target and final state, and for a failure the error's
// code, reason, message, remedy and step (the same text GetOperation
// shows: never secrets). Params, outputs and results are not included.
func FinishedEvent(op Operation) event.Event {
	ev := event.Event{
		Type: event.OperationFinished, Organization: resource.Org{Org: op.Org}.String(),
		Operation: op.Name(), OperationKind: op.Kind, Target: op.Target, State: string(op.State),
	}
	if op.EndTime != nil {
		ev.Time = *op.EndTime
	}
	switch {
	case op.State == StateFailed && op.Error != nil:
		e := op.Error
		ev.Error = &event.OperationError{Code: e.Code, Reason: e.Reason, Message: e.Message, Remedy: e.Remedy, Step: e.Step}
		ev.Summary = fmt.Sprintf("%s failed at step %s: %s", op.Kind, e.Step, e.Message)
	case op.State == StateCanceled:
		ev.Summary = fmt.Sprintf("%s canceled after %d of %d steps", op.Kind, op.StepsDone, op.StepsTotal)
	default:
		ev.Summary = fmt.Sprintf("%s %s", op.Kind, op.State)
	}
	return ev
}
