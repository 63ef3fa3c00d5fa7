package operation

import (
	"encoding/json"
	"fmt"
)

// Typed outputs. A step describes what it made as a struct with JSON tags
// (never secrets), returns it with Out, and later code reads it back with
// the same type:
//
//	type appOutputs struct {
//		AppObjectID string `json:"app_object_id"`
//		ClientID    string `json:"client_id"`
//	}
//	// in the step:
//	return operation.Out(appOutputs{AppObjectID: app.ID, ClientID: app.AppID})
//	// in a later step, or the kind's Result:
//	app, ok, err := operation.Output[appOutputs](sc, "register-app")
//	// after a cancel or a failure (what exists):
//	app, ok, err := operation.RecordedOutput[appOutputs](op, "register-app")
//
// ok is false when that step recorded nothing (not run yet, skipped,
// failed or canceled).

// Out turns v (a struct or map that marshals to a JSON object) into a
// step's Outputs.
func Out[T any](v T) (Outputs, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding step outputs: %w", err)
	}
	var out Outputs
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("step outputs must be a JSON object: %w", err)
	}
	return out, nil
}

// Output reads an earlier step's outputs as T.
func Output[T any](sc StepContext, step string) (T, bool, error) {
	return decodeOutput[T](step, sc.Outputs[step])
}

// RecordedOutput reads what step recorded in op as T: after a cancel or a
// failure, the outputs of the steps that succeeded are what exists.
func RecordedOutput[T any](op Operation, step string) (T, bool, error) {
	for _, s := range op.Steps {
		if s.Name == step {
			return decodeOutput[T](step, s.Outputs)
		}
	}
	var zero T
	return zero, false, nil
}

func decodeOutput[T any](step string, raw json.RawMessage) (T, bool, error) {
	var v T
	if len(raw) == 0 || string(raw) == "{}" || string(raw) == "null" {
		return v, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, true, fmt.Errorf("decoding the outputs of step %s: %w", step, err)
	}
	return v, true, nil
}
