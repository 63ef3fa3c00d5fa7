package verify

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

// StepStatus is the result of one step.
type StepStatus string

// The step statuses.
const (
	StepPassed      StepStatus = "passed"
	StepFailed      StepStatus = "failed"
	StepWarning     StepStatus = "warning"
	StepSkipped     StepStatus = "skipped"
	StepUnavailable StepStatus = "unavailable"
	StepPropagating StepStatus = "propagating"
	StepBlocked     StepStatus = "blocked"
)

// Step is one step's result. It never carries a secret or a token.
type Step struct {
	Name      string        `json:"name"`
	Status    StepStatus    `json:"status"`
	Duration  time.Duration `json:"duration_ns"`
	ErrorCode string        `json:"error_code,omitempty"`
	Message   string        `json:"message,omitempty"`
	Remedy    string        `json:"remedy,omitempty"`
}

// Permission sources.
const (
	SourceTokenRoles       = "token-roles"
	SourceEntraAssignments = "entra-app-role-assignments"
)

// Permissions compares granted permissions with the catalog.
type Permissions struct {
	Source          string   `json:"source,omitempty"`
	Granted         []string `json:"granted,omitempty"`
	MissingRequired []string `json:"missing_required,omitempty"`
	MissingOptional []string `json:"missing_optional,omitempty"`
	Extra           []string `json:"extra,omitempty"`
}

// Triggers.
const (
	TriggerAPI      = "api"
	TriggerSchedule = "schedule"
)

// Check is one verification.
type Check struct {
	Org, Tenant, Integration, ID uuid.UUID
	Outcome                      integration.State
	Trigger                      string
	Summary                      string
	Steps                        []Step
	Permissions                  Permissions
	Start, End                   time.Time
	// ExpiringSoon is set when the credential is within the warning window.
	ExpiringSoon bool
	// IntegrationVersion is the integration's version the check ran on. If
	// it changed meanwhile (a new secret, new settings), the check is kept
	// as history but does not set the state or announce anything.
	IntegrationVersion int64
}

// Result is what recording a check changed.
type Result struct {
	Check       Check
	Integration integration.Integration
	Previous    integration.State
}

// Changed reports whether the outcome differs from the previous state.
func (r Result) Changed() bool { return r.Previous != r.Check.Outcome }

func (c *Check) add(s Step) { c.Steps = append(c.Steps, s) }

// outcome decides the check's outcome from its steps.
func (c *Check) outcome() {
	var failed, propagating, warning, blocked, skipped int
	for _, s := range c.Steps {
		switch s.Status {
		case StepFailed:
			failed++
		case StepPropagating:
			propagating++
		case StepWarning:
			warning++
		case StepBlocked:
			blocked++
		case StepSkipped:
			skipped++
		}
	}
	switch {
	case blocked > 0:
		c.Outcome, c.Summary = integration.StateBlockedByPolicy, "blocked by a customer policy"
	case failed > 0:
		c.Outcome, c.Summary = integration.StateBroken, fmt.Sprintf("%d step(s) failed", failed)
	case propagating > 0:
		c.Outcome, c.Summary = integration.StatePropagating, "a recent change is still propagating in Microsoft's directory"
	case warning > 0:
		c.Outcome, c.Summary = integration.StateDegraded, fmt.Sprintf("works, with %d warning(s)", warning)
	default:
		c.Outcome, c.Summary = integration.StateHealthy, "all checks passed"
	}
	if skipped > 0 && c.Outcome == integration.StateHealthy {
		c.Outcome, c.Summary = integration.StateDegraded, fmt.Sprintf("incomplete: %d step(s) not run", skipped)
	}
}
