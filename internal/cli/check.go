package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// checkCommand is "dzctl check INTEGRATION"; "dzctl integration check" is
// the same command under the integration group.
func (inv *invocation) checkCommand() *cobra.Command {
	var (
		ascii bool
		wait  bool
		poll  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check INTEGRATION [--wait]",
		Short: "Verify an integration now and print a per-step report",
		Long: `Verify an integration now: the secret in Vault, a fresh token from the
customer's tenant, the granted permissions against the catalog, one probe per
API the integration uses, and the credential's expiry. The check is recorded,
and its outcome becomes the integration's state.

The check runs within --timeout (default 30s): steps the server has not reached
by then are reported as skipped.

Right after a create or a change (the settle window, 5 minutes by default), an
error Microsoft documents as replication lag is reported as propagating: each
such step says what it may be ("if this persists after 14:05:09 UTC: ...")
and the report says when the verdict is final. The service checks the
integration again by itself at that time. With --wait, dzctl follows the
integration's checks until one is not propagating, printing progress, and
then prints that final report (--timeout then bounds only the first check).

Exit code: 0 when the outcome is healthy, degraded or propagating (without
--wait); 3 when it is broken, blocked-by-policy or anything else that does not
mean "works" (the report is printed either way, with -o json too); 1 when the
call itself fails, or --wait saw no re-check by a minute after the window.`,
		Example: `  dzctl check organizations/contoso/tenants/fabrikam/integrations/defender
  dzctl check organizations/contoso/tenants/fabrikam/integrations/defender --wait
  dzctl integration check organizations/contoso/tenants/fabrikam/integrations/defender --timeout 2m
  dzctl check organizations/contoso/tenants/fabrikam/integrations/defender -o json | jq .check.steps`,
		Args: exactArgs("INTEGRATION"),
	}
	cmd.Flags().BoolVar(&ascii, "ascii", false, "mark steps with ASCII words (ok, FAIL, WARN, ...) instead of symbols")
	cmd.Flags().BoolVar(&wait, "wait", false, "when the outcome is propagating, follow the integration's checks to the final verdict")
	cmd.Flags().DurationVar(&poll, "poll-interval", 2*time.Second, "with --wait: how often to read the integration's latest check")
	run := inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		// ctx carries --timeout, which gRPC sends as the call's deadline;
		// with --wait only this call is bounded by it.
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if wait && inv.checkTimeout > 0 {
			cctx, cancel = context.WithTimeout(ctx, inv.checkTimeout)
		}
		resp, err := c.integrations.CheckIntegration(cctx, &dzconnectv1.CheckIntegrationRequest{Name: name})
		cancel()
		if err != nil {
			return err
		}
		p := inv.printer()
		propagating := resp.GetCheck().GetOutcome() == dzconnectv1.IntegrationState_INTEGRATION_STATE_PROPAGATING
		if wait && propagating {
			if !p.json { // the first report now: it says what the failure may be
				if err := writeCheckReport(p.out, name, resp.GetCheck(), ascii); err != nil {
					return err
				}
				_, _ = fmt.Fprintln(p.out)
			}
			final, err := inv.followChecks(ctx, c.integrations, name, resp.GetCheck(), poll)
			if err != nil {
				return err
			}
			resp = &dzconnectv1.CheckIntegrationResponse{Check: final}
			if in, err := c.integrations.GetIntegration(ctx, &dzconnectv1.GetIntegrationRequest{Name: name}); err == nil {
				resp.Integration = in.GetIntegration()
			}
		}
		if p.json {
			err = p.protoJSON(resp)
		} else {
			err = writeCheckReport(p.out, name, resp.GetCheck(), ascii)
		}
		if err != nil {
			return err
		}
		if !outcomeWorks(resp.GetCheck().GetOutcome()) {
			return &exitCodeError{code: ExitUnhealthy}
		}
		return nil
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if wait {
			if poll <= 0 {
				return usageErrorf("invalid --poll-interval %s: must be positive", poll)
			}
			// --timeout bounds the check; the wait lasts until the verdict
			// is final (bounded by the settle window the check reports).
			inv.checkTimeout, inv.timeout = inv.timeout, 0
		}
		return run(cmd, args)
	}
	return cmd
}

// settleGrace is how long --wait waits past a settle window's end for the
// service's re-check before giving up.
const settleGrace = time.Minute

// followChecks polls the integration's latest check until it is newer
// than first and not propagating, printing progress (on standard error
// with -o json), and returns it.
func (inv *invocation) followChecks(ctx context.Context, c dzconnectv1.IntegrationServiceClient, name string, first *dzconnectv1.Check, poll time.Duration) (*dzconnectv1.Check, error) {
	progress := inv.app.stdout
	if inv.output == "json" {
		progress = inv.app.stderr
	}
	end := first.GetSettleEndTime().AsTime()
	if first.GetSettleEndTime() == nil {
		end = time.Now().Add(5 * time.Minute) // a server without settle end times
	}
	lastShown := ""
	for {
		left := time.Until(end).Round(time.Second)
		line := fmt.Sprintf("Waiting for the final verdict: propagating until %s (%s left); the service checks again by itself then.",
			end.UTC().Format("15:04:05 UTC"), max(left, 0))
		if left <= 0 {
			line = fmt.Sprintf("Waiting for the final verdict: the settle window ended at %s; waiting for the service's re-check.", end.UTC().Format("15:04:05 UTC"))
		}
		// One line per 30 seconds left (and on a new window), not per poll.
		bucket := end.String() + "|" + max(left, 0).Truncate(30*time.Second).String()
		if bucket != lastShown {
			_, _ = fmt.Fprintln(progress, line)
			lastShown = bucket
		}
		if time.Now().After(end.Add(settleGrace)) {
			return nil, fmt.Errorf("no check after the settle window ended at %s: the service's check jobs may be off on every replica; run dzctl check again",
				end.UTC().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
		resp, err := c.ListChecks(ctx, &dzconnectv1.ListChecksRequest{Parent: name, PageSize: 1})
		if err != nil {
			return nil, err
		}
		if len(resp.GetChecks()) == 0 {
			continue
		}
		latest := resp.GetChecks()[0]
		if latest.GetName() == first.GetName() || !latest.GetStartTime().AsTime().After(first.GetStartTime().AsTime()) {
			continue
		}
		if latest.GetOutcome() != dzconnectv1.IntegrationState_INTEGRATION_STATE_PROPAGATING {
			return latest, nil
		}
		if latest.GetSettleEndTime() != nil && latest.GetSettleEndTime().AsTime().After(end) {
			end = latest.GetSettleEndTime().AsTime() // a newer change: a later window
		}
	}
}

// outcomeWorks reports whether a check outcome means the integration works:
// healthy, degraded (works with findings) or propagating (should clear).
func outcomeWorks(s dzconnectv1.IntegrationState) bool {
	switch s {
	case dzconnectv1.IntegrationState_INTEGRATION_STATE_HEALTHY,
		dzconnectv1.IntegrationState_INTEGRATION_STATE_DEGRADED,
		dzconnectv1.IntegrationState_INTEGRATION_STATE_PROPAGATING:
		return true
	}
	return false
}

// stepMark is how a step status is shown: a symbol, or an ASCII word.
type stepMark struct{ symbol, word string }

var stepMarks = map[dzconnectv1.CheckStepStatus]stepMark{
	dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_PASSED:      {"✓", "ok"},
	dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_FAILED:      {"✗", "FAIL"},
	dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_WARNING:     {"!", "WARN"},
	dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_SKIPPED:     {"–", "skip"},
	dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_PROPAGATING: {"~", "wait"},
	dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_UNAVAILABLE: {"∅", "n-a"},
	dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_BLOCKED:     {"⊘", "BLOCK"},
}

func markOf(s dzconnectv1.CheckStepStatus, ascii bool) string {
	m, ok := stepMarks[s]
	if !ok {
		m = stepMark{"?", "?"}
	}
	if ascii {
		return m.word
	}
	return m.symbol
}

// writeCheckReport prints a check for humans:
//
//	BROKEN: Entra rejected the client secret.
//	  organizations/contoso/tenants/fabrikam/integrations/defender, checked 2026-11-26T04:00:00Z (api)
//
//	  ✓ secret            3ms
//	  ✗ token:graph     412ms  AADSTS7000215  Invalid client secret provided.
//	      remedy: Create a new client secret ...
//	  – permissions
//
//	Permissions: not evaluated
//
// (with a token, "Permissions (source: ..., N granted)" and the missing
// required and optional and extra permissions).
func writeCheckReport(w io.Writer, integration string, c *dzconnectv1.Check, ascii bool) error {
	var b strings.Builder
	outcome := strings.ToUpper(enumString(c.GetOutcome(), "-"))
	if outcome == "" {
		outcome = "UNKNOWN"
	}
	if s := oneLine(c.GetSummary()); s != "" {
		fmt.Fprintf(&b, "%s: %s\n", outcome, s)
	} else {
		fmt.Fprintf(&b, "%s\n", outcome)
	}
	about := integration
	if t := timeString(c.GetStartTime()); t != "" {
		about += ", checked " + t
	}
	if tr := oneLine(c.GetTrigger()); tr != "" {
		about += " (" + tr + ")"
	}
	fmt.Fprintf(&b, "  %s\n", about)

	// Steps: mark, name, duration, error code, message; columns padded by
	// hand because remedy lines in between would restart a tabwriter block.
	type row struct{ mark, name, dur, code, msg, remedy string }
	rows := make([]row, 0, len(c.GetSteps()))
	var wMark, wName, wDur, wCode int
	for _, s := range c.GetSteps() {
		r := row{
			mark:   markOf(s.GetStatus(), ascii),
			name:   oneLine(s.GetName()),
			code:   oneLine(s.GetErrorCode()),
			msg:    oneLine(s.GetMessage()),
			remedy: oneLine(s.GetRemedy()),
		}
		if s.GetDuration() != nil {
			r.dur = fmt.Sprintf("%dms", s.GetDuration().AsDuration().Milliseconds())
		}
		wMark = max(wMark, width(r.mark))
		wName = max(wName, width(r.name))
		wDur = max(wDur, width(r.dur))
		wCode = max(wCode, width(r.code))
		rows = append(rows, r)
	}
	if len(rows) > 0 {
		b.WriteString("\n")
	}
	for _, r := range rows {
		line := "  " + padRight(r.mark, wMark) + " " + padRight(r.name, wName) + "  " + padLeft(r.dur, wDur)
		if wCode > 0 {
			line += "  " + padRight(r.code, wCode)
		}
		if r.msg != "" {
			line += "  " + r.msg
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		if r.remedy != "" {
			fmt.Fprintf(&b, "  %s   remedy: %s\n", strings.Repeat(" ", wMark), r.remedy)
		}
	}

	b.WriteString("\n")
	perm := c.GetPermissions()
	if perm == nil || oneLine(perm.GetSource()) == "" {
		// No source: nothing was read (no token, e.g. a refused secret).
		// "missing required: none" would read as good news.
		b.WriteString("Permissions: not evaluated\n")
	} else {
		source := oneLine(perm.GetSource())
		fmt.Fprintf(&b, "Permissions (source: %s, %d granted)\n", source, len(perm.GetGranted()))
		for _, l := range []struct {
			key    string
			values []string
		}{
			{"missing required", perm.GetMissingRequired()},
			{"missing optional", perm.GetMissingOptional()},
			{"extra", perm.GetExtra()},
		} {
			fmt.Fprintf(&b, "  %-18s %s\n", l.key+":", listOrNone(l.values))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func listOrNone(values []string) string {
	if len(values) == 0 {
		return "none"
	}
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = oneLine(v)
	}
	return strings.Join(out, ", ")
}

// oneLine keeps server-provided text on one line and free of control
// characters (terminal escapes): they become spaces, then runs of spaces
// collapse.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func width(s string) int { return utf8.RuneCountInString(s) }

func padRight(s string, w int) string { return s + strings.Repeat(" ", max(0, w-width(s))) }

func padLeft(s string, w int) string { return strings.Repeat(" ", max(0, w-width(s))) + s }

// integrationChecks is "dzctl integration checks INTEGRATION".
func (inv *invocation) integrationChecks() *cobra.Command {
	var pages pageFlags
	cmd := &cobra.Command{
		Use:   "checks INTEGRATION",
		Short: "List an integration's checks, newest first",
		Example: `  dzctl integration checks organizations/contoso/tenants/fabrikam/integrations/defender --limit 10
  dzctl integration checks organizations/contoso/tenants/fabrikam/integrations/defender -o json | jq '.checks[0].steps'`,
		Args: exactArgs("INTEGRATION"),
	}
	pages.add(cmd)
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		parent, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		if err := pages.check(); err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		checks, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.Check, string, error) {
			resp, err := c.integrations.ListChecks(ctx, &dzconnectv1.ListChecksRequest{Parent: parent, PageSize: size, PageToken: token})
			return resp.GetChecks(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(checks))
		for _, ch := range checks {
			rows = append(rows, []string{timeString(ch.GetStartTime()), short(ch.GetOutcome()), oneLine(ch.GetTrigger()), oneLine(ch.GetSummary())})
		}
		return inv.printer().table(&dzconnectv1.ListChecksResponse{Checks: checks}, "checks",
			[]string{"TIME", "OUTCOME", "TRIGGER", "SUMMARY"}, rows)
	})
	return cmd
}
