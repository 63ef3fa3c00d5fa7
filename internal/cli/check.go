package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// checkCommand is "dzctl check INTEGRATION"; "dzctl integration check" is
// the same command under the integration group.
func (inv *invocation) checkCommand() *cobra.Command {
	var ascii bool
	cmd := &cobra.Command{
		Use:   "check INTEGRATION",
		Short: "Verify an integration now and print a per-step report",
		Long: `Verify an integration now: the secret in Vault, a fresh token from the
customer's tenant, the granted permissions against the catalog, one probe per
API the integration uses, and the credential's expiry. The check is recorded,
and its outcome becomes the integration's state.

The check runs within --timeout (default 30s): steps the server has not reached
by then are reported as skipped.

Exit code: 0 when the outcome is healthy, degraded or propagating; 3 when it is
broken, blocked-by-policy or anything else that does not mean "works" (the
report is printed either way, with -o json too); 1 when the call itself fails.`,
		Example: `  dzctl check organizations/contoso/tenants/fabrikam/integrations/defender
  dzctl integration check organizations/contoso/tenants/fabrikam/integrations/defender --timeout 2m
  dzctl check organizations/contoso/tenants/fabrikam/integrations/defender -o json | jq .check.steps`,
		Args: exactArgs("INTEGRATION"),
	}
	cmd.Flags().BoolVar(&ascii, "ascii", false, "mark steps with ASCII words (ok, FAIL, WARN, ...) instead of symbols")
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		// ctx carries --timeout, which gRPC sends as the call's deadline.
		resp, err := c.integrations.CheckIntegration(ctx, &dzconnectv1.CheckIntegrationRequest{Name: name})
		if err != nil {
			return err
		}
		p := inv.printer()
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
	return cmd
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
