package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

var _ verify.Store = (*DB)(nil)

// checkFrom converts a row.
func checkFrom(r query.Check) (verify.Check, error) {
	c := verify.Check{Org: r.OrganizationID, Tenant: r.TenantID, Integration: r.IntegrationID, ID: r.ID,
		Outcome: integration.State(r.Outcome), Trigger: r.Trigger, Summary: r.Summary, Start: r.StartTime, End: r.EndTime,
		CatalogVersion: deref(r.CatalogVersion), SettleEnd: r.SettleEndTime}
	if err := json.Unmarshal(r.Steps, &c.Steps); err != nil {
		return c, fmt.Errorf("decoding check steps: %w", err)
	}
	if err := json.Unmarshal(r.Permissions, &c.Permissions); err != nil {
		return c, fmt.Errorf("decoding check permissions: %w", err)
	}
	return c, nil
}

// checkJSON encodes a check's steps and permissions.
func checkJSON(c verify.Check) (steps, perms json.RawMessage, err error) {
	if steps, err = json.Marshal(c.Steps); err != nil {
		return nil, nil, err
	}
	if c.Steps == nil {
		steps = json.RawMessage("[]")
	}
	perms, err = json.Marshal(c.Permissions)
	return steps, perms, err
}

// CheckName formats a check's resource name.
func CheckName(c verify.Check) string {
	return resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String() + "/checks/" + c.ID.String()
}

// InsertCheck implements verify.Store.
func (db *DB) InsertCheck(ctx context.Context, tx uow.Tx, c verify.Check) error {
	steps, perms, err := checkJSON(c)
	if err != nil {
		return err
	}
	return translate(queries.InsertCheck(ctx, q(tx), query.InsertCheckParams{
		OrganizationID: c.Org, TenantID: c.Tenant, IntegrationID: c.Integration, ID: c.ID, Outcome: string(c.Outcome),
		Trigger: c.Trigger, Summary: c.Summary, Steps: steps, Permissions: perms, StartTime: c.Start, EndTime: c.End,
		CatalogVersion: nilIfEmpty(c.CatalogVersion),
		SettleEndTime:  c.SettleEnd,
	}), "integration "+c.Integration.String())
}

// RecordExpectedMany implements verify.Store: the sweep's fast path, a
// group of checks in one statement, each applied only under its own
// expectations; it returns the IDs of the checks it wrote.
func (db *DB) RecordExpectedMany(ctx context.Context, tx uow.Tx, es []verify.Expected) ([]uuid.UUID, error) {
	n := len(es)
	p := query.RecordExpectedChecksParams{
		OrganizationIds: make([]uuid.UUID, 0, n), TenantIds: make([]uuid.UUID, 0, n), IntegrationIds: make([]uuid.UUID, 0, n),
		Ids: make([]uuid.UUID, 0, n), Outcomes: make([]string, 0, n), Triggers: make([]string, 0, n), Summaries: make([]string, 0, n),
		Steps: make([]json.RawMessage, 0, n), Permissions: make([]json.RawMessage, 0, n), StartTimes: make([]time.Time, 0, n),
		EndTimes: make([]time.Time, 0, n), ExpectVersions: make([]int64, 0, n), ExpectStates: make([]string, 0, n),
		CredentialIds: make([]uuid.UUID, 0, n), EventCredentialIds: make([]uuid.UUID, 0, n),
		EventCredentialEnds: make([]time.Time, 0, n), CatalogVersions: make([]string, 0, n),
	}
	for _, e := range es {
		c := e.Check
		steps, perms, err := checkJSON(c)
		if err != nil {
			return nil, err
		}
		p.OrganizationIds = append(p.OrganizationIds, c.Org)
		p.TenantIds = append(p.TenantIds, c.Tenant)
		p.IntegrationIds = append(p.IntegrationIds, c.Integration)
		p.Ids = append(p.Ids, c.ID)
		p.Outcomes = append(p.Outcomes, string(c.Outcome))
		p.Triggers = append(p.Triggers, c.Trigger)
		p.Summaries = append(p.Summaries, c.Summary)
		p.Steps = append(p.Steps, steps)
		p.Permissions = append(p.Permissions, perms)
		p.StartTimes = append(p.StartTimes, c.Start)
		p.EndTimes = append(p.EndTimes, c.End)
		p.ExpectVersions = append(p.ExpectVersions, e.Version)
		p.ExpectStates = append(p.ExpectStates, string(e.State))
		p.CredentialIds = append(p.CredentialIds, e.WarnedCredential)                          // uuid.Nil: no warning expected
		p.EventCredentialIds = append(p.EventCredentialIds, e.EventCredential)                 // uuid.Nil: none active
		p.EventCredentialEnds = append(p.EventCredentialEnds, derefTime(e.EventCredentialEnd)) // zero: none
		p.CatalogVersions = append(p.CatalogVersions, c.CatalogVersion)                        // "": null
	}
	ids, err := queries.RecordExpectedChecks(ctx, q(tx), p)
	return ids, translate(err, "")
}

// SetIntegrationState implements verify.Store.
func (db *DB) SetIntegrationState(ctx context.Context, tx uow.Tx, org, id uuid.UUID, state integration.State, checkTime time.Time) (integration.Integration, error) {
	r, err := queries.SetIntegrationState(ctx, q(tx), query.SetIntegrationStateParams{
		OrganizationID: org, ID: id, State: string(state), CheckTime: &checkTime,
	})
	if err != nil {
		return integration.Integration{}, translate(err, "integration "+id.String())
	}
	return integrationFrom(r), nil
}

// MarkCredentialWarned implements verify.Store.
func (db *DB) MarkCredentialWarned(ctx context.Context, tx uow.Tx, org, credential uuid.UUID, at time.Time) error {
	n, err := queries.MarkCredentialWarned(ctx, q(tx), query.MarkCredentialWarnedParams{OrganizationID: org, ID: credential, WarnedTime: &at})
	if err == nil && n == 0 {
		err = errNoRows
	}
	return translate(err, "credential "+credential.String())
}

// ListChecks implements verify.Store, newest first.
func (db *DB) ListChecks(ctx context.Context, tx uow.Tx, org, integrationID uuid.UUID, p page.Request) ([]verify.Check, error) {
	before := p.After
	if before == uuid.Nil {
		before = uuid.Max
	}
	rows, err := queries.ListChecks(ctx, q(tx), query.ListChecksParams{
		OrganizationID: org, IntegrationID: integrationID, Before: before, Lim: int32(p.Size + 1),
	})
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]verify.Check, 0, len(rows))
	for _, r := range rows {
		c, err := checkFrom(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// LoadCheckTarget implements verify.Store: one query for the integration,
// its tenant and its active credential.
func (db *DB) LoadCheckTarget(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (integration.Integration, tenant.Tenant, error) {
	r, err := queries.GetCheckTarget(ctx, q(tx), query.GetCheckTargetParams{OrganizationID: org, ID: id})
	if err != nil {
		return integration.Integration{}, tenant.Tenant{}, translate(err, "integration "+id.String())
	}
	tg, err := checkTargetFrom(r)
	return tg.Integration, tg.Tenant, err
}

// checkTargetFrom converts a check target row (GetCheckTarget's;
// ListDueCheckTargets' has the same fields).
func checkTargetFrom(r query.GetCheckTargetRow) (verify.Target, error) {
	t, err := tenantFrom(r.Tenant)
	if err != nil {
		return verify.Target{}, err
	}
	in := integrationFrom(r.Integration)
	if r.CredentialID.Valid {
		in.Credentials = []integration.Credential{{
			Org: in.Org, Integration: in.ID, ID: r.CredentialID.UUID, Type: integration.CredentialType(deref(r.CredentialType)),
			KeyID: r.CredentialKeyID, Hint: deref(r.CredentialHint), StartTime: r.CredentialStartTime, EndTime: r.CredentialEndTime,
			SecretPath: deref(r.CredentialSecretPath), SecretVersion: derefInt(r.CredentialSecretVersion),
			Source: integration.CredentialSource(deref(r.CredentialSource)), State: integration.CredentialState(deref(r.CredentialState)),
			ExpiryWarnTime: r.CredentialExpiryWarnedTime, CreateTime: derefTime(r.CredentialCreateTime), UpdateTime: derefTime(r.CredentialUpdateTime),
		}}
	}
	return verify.Target{Integration: in, Tenant: t}, nil
}

// LockIntegrations implements verify.Store: one query for the rows (locked
// in ID order), one for their credentials.
func (db *DB) LockIntegrations(ctx context.Context, tx uow.Tx, refs []verify.Ref) ([]integration.Integration, error) {
	p := query.LockIntegrationsParams{OrganizationIds: make([]uuid.UUID, len(refs)), Ids: make([]uuid.UUID, len(refs))}
	for k, r := range refs {
		p.OrganizationIds[k], p.Ids[k] = r.Org, r.ID
	}
	rows, err := queries.LockIntegrations(ctx, q(tx), p)
	if err != nil || len(rows) == 0 {
		return nil, translate(err, "")
	}
	out := make([]integration.Integration, len(rows))
	at := make(map[uuid.UUID]int, len(rows))
	cp := query.ListCredentialsOfIntegrationsParams{OrganizationIds: make([]uuid.UUID, len(rows)), IntegrationIds: make([]uuid.UUID, len(rows))}
	for k, r := range rows {
		out[k], at[r.ID] = integrationFrom(r), k
		cp.OrganizationIds[k], cp.IntegrationIds[k] = r.OrganizationID, r.ID
	}
	creds, err := queries.ListCredentialsOfIntegrations(ctx, q(tx), cp)
	if err != nil {
		return nil, translate(err, "")
	}
	for _, c := range creds {
		k := at[c.IntegrationID]
		out[k].Credentials = append(out[k].Credentials, credentialFrom(c))
	}
	return out, nil
}

// InsertChecks implements verify.Store: one statement.
func (db *DB) InsertChecks(ctx context.Context, tx uow.Tx, cs []verify.Check) error {
	if len(cs) == 0 {
		return nil
	}
	p := query.InsertChecksParams{}
	for _, c := range cs {
		steps, perms, err := checkJSON(c)
		if err != nil {
			return err
		}
		p.OrganizationIds = append(p.OrganizationIds, c.Org)
		p.TenantIds = append(p.TenantIds, c.Tenant)
		p.IntegrationIds = append(p.IntegrationIds, c.Integration)
		p.Ids = append(p.Ids, c.ID)
		p.Outcomes = append(p.Outcomes, string(c.Outcome))
		p.Triggers = append(p.Triggers, c.Trigger)
		p.Summaries = append(p.Summaries, c.Summary)
		p.Steps = append(p.Steps, steps)
		p.Permissions = append(p.Permissions, perms)
		p.StartTimes = append(p.StartTimes, c.Start)
		p.EndTimes = append(p.EndTimes, c.End)
		p.CatalogVersions = append(p.CatalogVersions, c.CatalogVersion)     // "": null
		p.SettleEndTimes = append(p.SettleEndTimes, derefTime(c.SettleEnd)) // zero: none
	}
	return translate(queries.InsertChecks(ctx, q(tx), p), "")
}

// SetIntegrationStates implements verify.Store: one statement.
func (db *DB) SetIntegrationStates(ctx context.Context, tx uow.Tx, vs []verify.Verdict) ([]integration.Integration, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	p := query.SetIntegrationStatesParams{}
	for _, v := range vs {
		p.OrganizationIds = append(p.OrganizationIds, v.Org)
		p.Ids = append(p.Ids, v.ID)
		p.States = append(p.States, string(v.State))
		p.CheckTimes = append(p.CheckTimes, v.CheckTime)
	}
	rows, err := queries.SetIntegrationStates(ctx, q(tx), p)
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]integration.Integration, len(rows))
	for k, r := range rows {
		out[k] = integrationFrom(r)
	}
	return out, nil
}

func derefInt(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func derefTime(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return *p
}
