package catalog

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

// Override changes one entry's requirement for one organization: it makes
// an optional (or alternative) permission required, or a required one
// optional. An entry is named by kind and value, plus the resource API's
// application ID when the value alone is ambiguous in the kind.
type Override struct {
	Kind          integration.Kind `json:"kind"`
	ResourceAppID string           `json:"resource_app_id,omitempty"`
	Value         string           `json:"value"`
	Requirement   Requirement      `json:"requirement"`
}

// OverrideError is one invalid override: its index in the list, the field
// at fault and why.
type OverrideError struct {
	Index   int
	Field   string // kind, resource_app_id, value or requirement
	Message string
}

// MaxOverrides bounds an organization's override list.
const MaxOverrides = 100

// CheckOverrides validates ovs against the catalog: each names exactly one
// entry, once, and sets required or optional.
func (c *Catalog) CheckOverrides(ovs []Override) []OverrideError {
	var errs []OverrideError
	seen := map[int]int{}
	for i, o := range ovs {
		switch o.Kind {
		case integration.KindDefender, integration.KindSentinel:
		default:
			errs = append(errs, OverrideError{i, "kind", "unknown integration kind"})
			continue
		}
		if o.Requirement != Required && o.Requirement != Optional {
			errs = append(errs, OverrideError{i, "requirement", "must be required or optional"})
		}
		if o.ResourceAppID != "" && !isGUID(o.ResourceAppID) {
			errs = append(errs, OverrideError{i, "resource_app_id", "not a GUID"})
			continue
		}
		idx := c.match(o)
		switch {
		case len(idx) == 0:
			errs = append(errs, OverrideError{i, "value", fmt.Sprintf("no %s permission %q in catalog %s", o.Kind, o.Value, c.version)})
			continue
		case len(idx) > 1:
			errs = append(errs, OverrideError{i, "resource_app_id", fmt.Sprintf("%q names several %s permissions: give the resource API's application ID", o.Value, o.Kind)})
			continue
		}
		if j, dup := seen[idx[0]]; dup {
			errs = append(errs, OverrideError{i, "value", fmt.Sprintf("the same permission as entries[%d]", j)})
			continue
		}
		seen[idx[0]] = i
	}
	return errs
}

// match returns the indexes of the entries o names.
func (c *Catalog) match(o Override) []int {
	var out []int
	for i, e := range c.entries {
		if e.Kind != o.Kind || e.Value != o.Value {
			continue
		}
		if o.ResourceAppID != "" && !strings.EqualFold(e.ResourceAppID, o.ResourceAppID) {
			continue
		}
		out = append(out, i)
	}
	return out
}

// Apply returns the catalog with an organization's overrides (revision
// rev of its override list) applied, versioned "<version>+org.<rev>".
// Overrides that name no single entry (the catalog file changed since they
// were written) are ignored; with none applicable or rev 0 the catalog is
// returned as is.
func (c *Catalog) Apply(ovs []Override, rev int64) *Catalog {
	if rev == 0 {
		return c
	}
	out := &Catalog{version: c.version + "+org." + strconv.FormatInt(rev, 10), entries: c.Entries()}
	for _, o := range ovs {
		if o.Requirement != Required && o.Requirement != Optional {
			continue
		}
		if idx := c.match(o); len(idx) == 1 {
			out.entries[idx[0]].Requirement = o.Requirement
			out.entries[idx[0]].Note = strings.TrimSpace(out.entries[idx[0]].Note + " " +
				"Requirement set to " + string(o.Requirement) + " by the organization's catalog override.")
		}
	}
	return out
}
