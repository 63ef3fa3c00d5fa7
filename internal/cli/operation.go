package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// ExitOperationNotSucceeded: dzctl operation wait saw the operation end
// FAILED or CANCELED.
const ExitOperationNotSucceeded = 4

// waitPoll is how long one WaitOperation call may wait (the server caps
// it at 60s); dzctl calls again until the operation is done.
const waitPoll = 50 * time.Second

func (inv *invocation) operationCommand() *cobra.Command {
	cmd := group("operation", "Show, wait for and cancel long-running operations", "operations", "op")
	cmd.AddCommand(inv.operationGet(), inv.operationList(), inv.operationWait(), inv.operationCancel())
	return cmd
}

func (inv *invocation) operationClient() (dzconnectv1.OperationServiceClient, error) {
	conn, err := inv.clientConn()
	if err != nil {
		return nil, err
	}
	return dzconnectv1.NewOperationServiceClient(conn), nil
}

func operationName(flag, s string) (string, error) {
	if _, err := resourceName(flag, s, "organizations", "operations"); err != nil {
		return "", usageErrorf("invalid %s %q: want organizations/ORG/operations/OPERATION", flag, s)
	}
	return s, nil
}

// progressString is "2/5 (40%)".
func progressString(o *dzconnectv1.Operation) string {
	m := o.GetMetadata()
	return fmt.Sprintf("%d/%d (%d%%)", m.GetStepsDone(), m.GetStepsTotal(), m.GetPercentDone())
}

func operationErrorString(e *dzconnectv1.OperationError) string {
	if e == nil {
		return ""
	}
	s := e.GetCode()
	if e.GetReason() != "" {
		s += " (" + e.GetReason() + ")"
	}
	if e.GetStep() != "" {
		s += " in step " + e.GetStep()
	}
	return s + ": " + e.GetMessage()
}

// stepLine is one step as a line of progress or of the step table.
func stepLine(s *dzconnectv1.OperationStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", s.GetName(), short(s.GetState()))
	if s.GetAttempts() > 1 || (s.GetAttempts() == 1 && s.GetState() == dzconnectv1.StepState_STEP_STATE_RUNNING) {
		fmt.Fprintf(&b, " (attempt %d)", s.GetAttempts())
	}
	polling := s.GetPolls() > 0 && (s.GetState() == dzconnectv1.StepState_STEP_STATE_PENDING || s.GetState() == dzconnectv1.StepState_STEP_STATE_RUNNING)
	switch {
	case polling:
		fmt.Fprintf(&b, ", poll %d: %s", s.GetPolls(), s.GetObservation())
		if s.GetState() == dzconnectv1.StepState_STEP_STATE_PENDING && s.GetNextAttemptTime() != nil {
			fmt.Fprintf(&b, ", next look %s", timeString(s.GetNextAttemptTime()))
		}
		if s.GetPollDeadline() != nil {
			fmt.Fprintf(&b, ", until %s", timeString(s.GetPollDeadline()))
		}
	case s.GetNextAttemptTime() != nil && s.GetState() == dzconnectv1.StepState_STEP_STATE_PENDING:
		fmt.Fprintf(&b, ", next attempt %s", timeString(s.GetNextAttemptTime()))
	case s.GetPolls() > 0:
		fmt.Fprintf(&b, " after %d polls (last: %s)", s.GetPolls(), s.GetObservation())
	}
	if e := s.GetLastError(); e != nil && s.GetState() != dzconnectv1.StepState_STEP_STATE_SUCCEEDED {
		fmt.Fprintf(&b, ", last error %s", operationErrorString(e))
		if e.GetRemedy() != "" {
			fmt.Fprintf(&b, "; remedy: %s", e.GetRemedy())
		}
	}
	if o := s.GetOutputs(); o != nil && len(o.GetFields()) > 0 {
		var buf bytes.Buffer
		if raw, err := protojson.Marshal(o); err == nil && json.Compact(&buf, raw) == nil {
			fmt.Fprintf(&b, ", outputs %s", buf.String())
		}
	}
	return b.String()
}

func (inv *invocation) printOperation(o *dzconnectv1.Operation) error {
	p := inv.printer()
	if p.json {
		return p.protoJSON(o)
	}
	fields := []field{
		{"Name", o.GetName()}, {"Kind", o.GetKind()}, {"Target", o.GetTarget()}, {"State", short(o.GetState())},
		{"Progress", progressString(o)}, {"Cancel requested", strconv.FormatBool(o.GetCancelRequested())},
		{"Created", timeString(o.GetCreateTime())}, {"Updated", timeString(o.GetUpdateTime())}, {"Ended", timeString(o.GetEndTime())},
		{"Etag", o.GetEtag()},
	}
	if e := o.GetError(); e != nil {
		fields = append(fields, field{"Error", operationErrorString(e)}, field{"Remedy", e.GetRemedy()})
	}
	if err := p.resource(o, fields); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(p.out, "Steps:"); err != nil {
		return err
	}
	for i, s := range o.GetMetadata().GetSteps() {
		if _, err := fmt.Fprintf(p.out, "  %d. %s\n", i+1, stepLine(s)); err != nil {
			return err
		}
	}
	return nil
}

func (inv *invocation) operationGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get OPERATION",
		Short:   "Show an operation: state, progress, each step, result or error",
		Example: `  dzctl operation get organizations/contoso/operations/0190...`,
		Args:    exactArgs("OPERATION"),
	}
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := operationName("operation", args[0])
		if err != nil {
			return err
		}
		c, err := inv.operationClient()
		if err != nil {
			return err
		}
		resp, err := c.GetOperation(ctx, &dzconnectv1.GetOperationRequest{Name: name})
		if err != nil {
			return err
		}
		return inv.printOperation(resp.GetOperation())
	})
	return cmd
}

func (inv *invocation) operationList() *cobra.Command {
	var org, state, kind, target string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:   "list --org ORG [--state STATE] [--kind KIND] [--target NAME]",
		Short: "List an organization's operations, newest first",
		Example: `  dzctl operation list --org contoso --state running
  dzctl operation list --org contoso --target organizations/contoso/tenants/0190.../integrations/0190...`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization, organizations/ORG or ORG (required)")
	cmd.Flags().StringVar(&state, "state", "", "pending, running, succeeded, failed or canceled")
	cmd.Flags().StringVar(&kind, "kind", "", "operation kind, e.g. provision-integration")
	cmd.Flags().StringVar(&target, "target", "", "resource name the operations work on")
	pages.add(cmd)
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		var clauses []string
		if state != "" {
			n, err := parseEnum("--state", dzconnectv1.OperationState(0).Descriptor(), state, nil)
			if err != nil {
				return err
			}
			clauses = append(clauses, "state = "+dzconnectv1.OperationState(n).String())
		}
		for _, kv := range [][2]string{{"kind", kind}, {"target", target}} {
			if kv[1] == "" {
				continue
			}
			if strings.ContainsAny(kv[1], "\"\n") {
				return usageErrorf("invalid --%s %q", kv[0], kv[1])
			}
			clauses = append(clauses, kv[0]+` = "`+kv[1]+`"`)
		}
		filter := strings.Join(clauses, " AND ")
		c, err := inv.operationClient()
		if err != nil {
			return err
		}
		ops, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.Operation, string, error) {
			resp, err := c.ListOperations(ctx, &dzconnectv1.ListOperationsRequest{Parent: parent, Filter: filter, PageSize: size, PageToken: token})
			return resp.GetOperations(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(ops))
		for _, o := range ops {
			rows = append(rows, []string{o.GetName(), o.GetKind(), short(o.GetState()), progressString(o), o.GetTarget(), timeString(o.GetCreateTime())})
		}
		return inv.printer().table(&dzconnectv1.ListOperationsResponse{Operations: ops}, "operations",
			[]string{"NAME", "KIND", "STATE", "PROGRESS", "TARGET", "CREATED"}, rows)
	})
	return cmd
}

func (inv *invocation) operationCancel() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel OPERATION",
		Short: "Cancel an operation at its next step boundary",
		Long: `Ask an operation to stop. The step running now finishes; the operation then
stops, its remaining steps are canceled, and the steps' outputs show what
the finished steps made. Use 'dzctl operation wait' to see it end.`,
		Example: `  dzctl operation cancel organizations/contoso/operations/0190...`,
		Args:    exactArgs("OPERATION"),
	}
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := operationName("operation", args[0])
		if err != nil {
			return err
		}
		c, err := inv.operationClient()
		if err != nil {
			return err
		}
		resp, err := c.CancelOperation(ctx, &dzconnectv1.CancelOperationRequest{Name: name})
		if err != nil {
			return err
		}
		return inv.printOperation(resp.GetOperation())
	})
	return cmd
}

func (inv *invocation) operationWait() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wait OPERATION",
		Short: "Wait for an operation to end, showing each step's progress",
		Long: `Wait until the operation ends, printing a line whenever a step changes
(on standard error with -o json), then the operation. The exit code is 0
when it succeeded and 4 when it failed or was canceled. Without --timeout,
dzctl waits as long as the operation runs.`,
		Example: `  dzctl operation wait organizations/contoso/operations/0190...
  dzctl operation wait organizations/contoso/operations/0190... --timeout 10m -o json`,
		Args: exactArgs("OPERATION"),
	}
	run := inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := operationName("operation", args[0])
		if err != nil {
			return err
		}
		c, err := inv.operationClient()
		if err != nil {
			return err
		}
		cur, err := inv.followOperation(ctx, c, name, nil)
		if err != nil {
			return err
		}
		if err := inv.printOperation(cur); err != nil {
			return err
		}
		if cur.GetState() != dzconnectv1.OperationState_OPERATION_STATE_SUCCEEDED {
			return &exitCodeError{code: ExitOperationNotSucceeded}
		}
		return nil
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !cmd.Flags().Changed("timeout") {
			inv.timeout = 0 // wait as long as the operation runs
		}
		return run(cmd, args)
	}
	return cmd
}

// followOperation waits until the operation named name is done, printing
// a line per step change (on standard error with -o json). first, when
// set, is the operation as a starting call returned it.
func (inv *invocation) followOperation(ctx context.Context, c dzconnectv1.OperationServiceClient, name string, first *dzconnectv1.Operation) (*dzconnectv1.Operation, error) {
	progress := inv.app.stdout
	if inv.printer().json { // machine-readable output (-o json|yaml|name, --field): stdout holds only the result
		progress = inv.app.stderr
	}
	cur := first
	shown := map[string]string{}
	if cur != nil {
		printProgress(progress, cur, shown)
	}
	for cur == nil || !cur.GetDone() {
		resp, err := c.WaitOperation(ctx, &dzconnectv1.WaitOperationRequest{Name: name, Etag: cur.GetEtag(), Timeout: durationpb.New(waitPoll)})
		if err != nil {
			if cur != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				_, _ = fmt.Fprintf(inv.app.stderr, "Operation still %s after --timeout.\n", short(cur.GetState()))
			}
			return nil, err
		}
		cur = resp.GetOperation()
		printProgress(progress, cur, shown)
	}
	return cur, nil
}

// printProgress prints a line for each step whose line changed since the
// last call (shown holds what was printed, by step name).
func printProgress(w io.Writer, o *dzconnectv1.Operation, shown map[string]string) {
	first := len(shown) == 0
	for _, s := range o.GetMetadata().GetSteps() {
		line := stepLine(s)
		if shown[s.GetName()] == line || (first && s.GetState() == dzconnectv1.StepState_STEP_STATE_PENDING && s.GetAttempts() == 0 && s.GetPolls() == 0) {
			shown[s.GetName()] = line
			continue
		}
		shown[s.GetName()] = line
		_, _ = fmt.Fprintf(w, "[%s] %s\n", progressString(o), line) // progress is best effort
	}
}
