package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

var _ verify.Store = (*DB)(nil)

const checkColumns = `organization_id, tenant_id, integration_id, id, outcome, trigger, summary, steps, permissions, start_time, end_time`

func scanCheck(row pgx.Row) (verify.Check, error) {
	var (
		c            verify.Check
		steps, perms []byte
	)
	if err := row.Scan(&c.Org, &c.Tenant, &c.Integration, &c.ID, &c.Outcome, &c.Trigger, &c.Summary, &steps, &perms, &c.Start, &c.End); err != nil {
		return c, err
	}
	if err := json.Unmarshal(steps, &c.Steps); err != nil {
		return c, fmt.Errorf("decoding check steps: %w", err)
	}
	if err := json.Unmarshal(perms, &c.Permissions); err != nil {
		return c, fmt.Errorf("decoding check permissions: %w", err)
	}
	return c, nil
}

// CheckName formats a check's resource name.
func CheckName(c verify.Check) string {
	return resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String() + "/checks/" + c.ID.String()
}

// RecordCheck implements verify.Store. In one transaction: the check row,
// the integration's state (its etag does not change: state is output
// only), and the webhook deliveries of a state change or of a credential
// entering the warning window (once per credential).
func (db *DB) RecordCheck(ctx context.Context, c verify.Check) (verify.Result, error) {
	steps, err := json.Marshal(c.Steps)
	if err != nil {
		return verify.Result{}, err
	}
	perms, err := json.Marshal(c.Permissions)
	if err != nil {
		return verify.Result{}, err
	}
	if r, ok, err := db.recordUnchanged(ctx, c, steps, perms); err != nil || ok {
		return r, err
	}
	var r verify.Result
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		in, err := scanIntegration(tx.QueryRow(ctx, `select `+integrationColumns+` from integrations
			where organization_id = $1 and id = $2 and not pending for update`, c.Org, c.Integration))
		if err != nil {
			return translate(err, "integration "+c.Integration.String())
		}
		if _, err := tx.Exec(ctx, `insert into checks (`+checkColumns+`) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			c.Org, c.Tenant, c.Integration, c.ID, c.Outcome, c.Trigger, c.Summary, steps, perms, c.Start, c.End); err != nil {
			return err
		}
		r = verify.Result{Check: c, Previous: in.State}
		if c.IntegrationVersion != 0 && in.Version != c.IntegrationVersion {
			// The integration changed while the check ran: the check is
			// history about the old settings only.
			r.Integration, r.Previous = in, c.Outcome
			return nil
		}
		warn := c.ExpiringSoon && !(in.ExpiryWarnTime != nil)
		r.Integration, err = scanIntegration(tx.QueryRow(ctx, `update integrations set state = $3, last_check_time = $4,
				state_change_time = case when state <> $3 then $4 else state_change_time end,
				expiry_warned_time = case when $5 then $4 else expiry_warned_time end
			where organization_id = $1 and id = $2 returning `+integrationColumns, c.Org, c.Integration, c.Outcome, c.End, warn))
		if err != nil {
			return err
		}
		ev := event.Event{
			Time: c.End, Organization: resource.Org{Org: c.Org}.String(),
			Integration: resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String(),
			Kind:        string(in.Kind), PreviousState: string(in.State), State: string(c.Outcome),
			Check: CheckName(c), Summary: c.Summary, CredentialExpireTime: in.Credential.ExpireTime,
		}
		if c.Trigger == verify.TriggerAPI {
			// An on-demand check is a caller's write; scheduled ones are
			// the service's own and stay out of the audit trail.
			if err := appendAudit(ctx, tx, c.Org, CheckName(c)); err != nil {
				return err
			}
		}
		if r.Changed() {
			ev.Type = event.StateChanged
			if err := db.queueDeliveries(ctx, tx, c.Org, ev); err != nil {
				return err
			}
		}
		if warn {
			ev.Type = event.CredentialExpiring
			if err := db.queueDeliveries(ctx, tx, c.Org, ev); err != nil {
				return err
			}
		}
		return nil
	})
	return r, err
}

// recordUnchanged is RecordCheck's fast path, one statement for the usual
// scheduled check: same outcome as the stored state, no warning to send,
// integration unchanged since the check loaded it. It reports false (and
// writes nothing) when any of that does not hold.
func (db *DB) recordUnchanged(ctx context.Context, c verify.Check, steps, perms []byte) (verify.Result, bool, error) {
	if c.Trigger != verify.TriggerSchedule || c.IntegrationVersion == 0 {
		return verify.Result{}, false, nil
	}
	in, err := scanIntegration(db.pool.QueryRow(ctx, `with upd as (
			update integrations set last_check_time = $11
			where organization_id = $1 and id = $3 and not pending and version = $12 and state = $5
			  and (not $13 or expiry_warned_time is not null)
			returning `+integrationColumns+`
		), ins as (
			insert into checks (`+checkColumns+`)
			select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 from upd
		)
		select `+integrationColumns+` from upd`,
		c.Org, c.Tenant, c.Integration, c.ID, c.Outcome, c.Trigger, c.Summary, steps, perms, c.Start, c.End,
		c.IntegrationVersion, c.ExpiringSoon))
	if errors.Is(err, pgx.ErrNoRows) {
		return verify.Result{}, false, nil
	}
	if err != nil {
		return verify.Result{}, false, translate(err, "")
	}
	return verify.Result{Check: c, Integration: in, Previous: c.Outcome}, true, nil
}

// queueDeliveries queues the event's webhook deliveries in tx through the
// event.Notifier wired with UseNotifier (webhook deliveries as River jobs).
func (db *DB) queueDeliveries(ctx context.Context, tx pgx.Tx, org uuid.UUID, ev event.Event) error {
	return db.notifier.Notify(ctx, handle{q: tx, tx: tx}, org, ev)
}

// ListChecks implements verify.Store, newest first.
func (db *DB) ListChecks(ctx context.Context, org, integrationID uuid.UUID, p page.Request) ([]verify.Check, error) {
	before := p.After
	if before == uuid.Nil {
		before = uuid.Max
	}
	rows, err := db.pool.Query(ctx, `select `+checkColumns+` from checks
		where organization_id = $1 and integration_id = $2 and id < $3 order by id desc limit $4`,
		org, integrationID, before, p.Size+1)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (verify.Check, error) { return scanCheck(r) })
	return out, translate(err, "")
}

// qualify prefixes every column of a column list with a table alias.
func qualify(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

var checkTargetQuery = `select ` + qualify("i", integrationColumns) + `, ` + qualify("t", tenantColumns) + `
	from integrations i join tenants t on t.organization_id = i.organization_id and t.id = i.tenant_id
	where i.organization_id = $1 and i.id = $2 and not i.pending`

// LoadCheckTarget implements verify.Store.
func (db *DB) LoadCheckTarget(ctx context.Context, org, id uuid.UUID) (integration.Integration, tenant.Tenant, error) {
	var (
		x integrationRow
		t tenant.Tenant
	)
	if err := db.pool.QueryRow(ctx, checkTargetQuery, org, id).Scan(append(x.dest(), tenantDest(&t)...)...); err != nil {
		return integration.Integration{}, tenant.Tenant{}, translate(err, "integration "+id.String())
	}
	return x.value(), t, nil
}
