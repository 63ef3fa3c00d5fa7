package verify

import (
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
	// IfPersists, on a propagating step, is the remedy the failure would
	// have outside the settle window (Remedy then says to wait, and until
	// when): what it may be, shown in the check's summary.
	IfPersists string `json:"if_persists,omitempty"`
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
	TriggerAPI       = "api"
	TriggerSchedule  = "schedule"
	TriggerProvision = "provision" // the provision operation's verify step
	TriggerSettle    = "settle"    // the re-check when a propagating check's settle window ends
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
	// SettleEnd, on a propagating check, is when the settle window ends:
	// the verdict is final then, and a re-check runs (SettleArgs).
	SettleEnd *time.Time
	// ExpiringSoon is set when the credential is within the warning window.
	ExpiringSoon bool
	// IntegrationVersion is the integration's version the check ran on. If
	// it changed meanwhile (a new secret, new settings), the check is kept
	// as history but does not set the state or announce anything.
	IntegrationVersion int64
	// Credential is the active credential the check ran with (uuid.Nil:
	// none); not stored.
	Credential uuid.UUID
	// CatalogVersion is the effective permission catalog's version the
	// check judged with ("" for checks recorded before it was kept).
	CatalogVersion string
	// ExpiryMismatch is set when the active credential's end date read
	// from Entra differs from the recorded one; not stored (recording the
	// check corrects the record).
	ExpiryMismatch *ExpiryMismatch
}

// Result is what recording a check changed.
type Result struct {
	Check       Check
	Integration integration.Integration
	Previous    integration.State
	// Warned: recording the check announced its credential's expiry (the
	// credential-expiring event, once per credential).
	Warned bool
}

// Changed reports whether the outcome differs from the previous state.
func (r Result) Changed() bool { return r.Previous != r.Check.Outcome }

func (c *Check) add(s Step) { c.Steps = append(c.Steps, s) }

// outcome decides the check's outcome from its steps.
func (c *Check) outcome() {
	c.Outcome, c.Summary = OutcomeAt(c.Steps, c.SettleEnd)
	if c.Outcome != integration.StatePropagating {
		c.SettleEnd = nil
	}
}
