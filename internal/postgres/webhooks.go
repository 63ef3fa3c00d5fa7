package postgres

import (
	"context"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

var _ webhook.Store = (*DB)(nil)

// A webhook whose secret_version is 0 is pending (its create has not
// finished): invisible to every API query.
const webhookColumns = `organization_id, id, url, events, disabled, secret_path, secret_version, create_time, update_time, version`

func scanWebhook(row pgx.Row) (webhook.Webhook, error) {
	var (
		w      webhook.Webhook
		events []string
	)
	err := row.Scan(&w.Org, &w.ID, &w.URL, &events, &w.Disabled, &w.SecretPath, &w.SecretVersion, &w.CreateTime, &w.UpdateTime, &w.Version)
	for _, e := range events {
		w.Events = append(w.Events, webhook.Event(e))
	}
	return w, err
}

func eventStrings(es []webhook.Event) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, string(e))
	}
	return out
}

const deliveryColumns = `d.organization_id, d.id, d.webhook_id, d.event, d.resource, d.payload, d.status, d.attempts,
	d.last_status_code, d.last_error, d.create_time, d.next_attempt_time, d.deliver_time`

func scanDelivery(row pgx.Row, extra ...any) (webhook.Delivery, error) {
	var d webhook.Delivery
	err := row.Scan(append([]any{&d.Org, &d.ID, &d.Webhook, &d.Event, &d.Resource, &d.Payload, &d.Status, &d.Attempts,
		&d.LastStatusCode, &d.LastError, &d.CreateTime, &d.NextAttemptTime, &d.DeliverTime}, extra...)...)
	return d, err
}

// BeginCreateWebhook implements webhook.Store.
func (db *DB) BeginCreateWebhook(ctx context.Context, in webhook.Webhook, key idempotency.Key) (webhook.Webhook, bool, error) {
	var (
		out    webhook.Webhook
		replay bool
	)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		orgName := resource.Org{Org: in.Org}.String()
		if err := lockVersion(ctx, tx, orgName, 0, `select version from organizations where id = $1 for share`, in.Org); err != nil {
			return err
		}
		prior, err := claimRequest(ctx, tx, in.Org, "CreateWebhook", key, webhook.Name(in.Org, in.ID))
		if err != nil {
			return err
		}
		if prior != uuid.Nil {
			replay = true
			out, err = scanWebhook(tx.QueryRow(ctx, `select `+webhookColumns+` from webhooks
				where organization_id = $1 and id = $2`, in.Org, prior))
			return translate(err, webhook.Name(in.Org, prior))
		}
		// The organization's row is locked for update so concurrent creates
		// count one after the other.
		var n int
		if err := tx.QueryRow(ctx, `select count(*) from webhooks where organization_id = (
			select id from organizations where id = $1 for update)`, in.Org).Scan(&n); err != nil {
			return err
		}
		if n >= webhook.MaxPerOrganization {
			return apperr.New(apperr.FailedPrecondition, "an organization has at most %d webhooks; delete one first", webhook.MaxPerOrganization).
				WithReason("WEBHOOK_LIMIT")
		}
		out, err = scanWebhook(tx.QueryRow(ctx, `insert into webhooks (organization_id, id, url, events, disabled, secret_path, secret_version)
			values ($1, $2, $3, $4, true, $5, 0) returning `+webhookColumns,
			in.Org, in.ID, in.URL, eventStrings(in.Events), in.SecretPath))
		return err
	})
	return out, replay, err
}

// FinishCreateWebhook implements webhook.Store.
func (db *DB) FinishCreateWebhook(ctx context.Context, org, id uuid.UUID, secretVersion int64, disabled bool) (webhook.Webhook, error) {
	var out webhook.Webhook
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanWebhook(tx.QueryRow(ctx, `update webhooks
			set secret_version = $3, disabled = $4, update_time = now()
			where organization_id = $1 and id = $2 and secret_version = 0
			returning `+webhookColumns, org, id, secretVersion, disabled))
		if err != nil {
			return translate(err, webhook.Name(org, id))
		}
		return appendAudit(ctx, tx, org, webhook.Name(org, id))
	})
	return out, err
}

// GetWebhook implements webhook.Store.
func (db *DB) GetWebhook(ctx context.Context, org, id uuid.UUID) (webhook.Webhook, error) {
	w, err := scanWebhook(db.pool.QueryRow(ctx, `select `+webhookColumns+` from webhooks
		where organization_id = $1 and id = $2 and secret_version > 0`, org, id))
	return w, translate(err, webhook.Name(org, id))
}

// ListWebhooks implements webhook.Store.
func (db *DB) ListWebhooks(ctx context.Context, org uuid.UUID, p page.Request) ([]webhook.Webhook, error) {
	rows, err := db.pool.Query(ctx, `select `+webhookColumns+` from webhooks
		where organization_id = $1 and secret_version > 0 and id > $2 order by id limit $3`, org, p.After, p.Size+1)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (webhook.Webhook, error) { return scanWebhook(r) })
	return out, translate(err, "")
}

// UpdateWebhook implements webhook.Store.
func (db *DB) UpdateWebhook(ctx context.Context, org, id uuid.UUID, version int64, mutate func(*webhook.Webhook) error) (webhook.Webhook, error) {
	name := webhook.Name(org, id)
	var out webhook.Webhook
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanWebhook(tx.QueryRow(ctx, `select `+webhookColumns+` from webhooks
			where organization_id = $1 and id = $2 and secret_version > 0 for update`, org, id))
		if err != nil {
			return translate(err, name)
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := mutate(&cur); err != nil {
			return err
		}
		out, err = scanWebhook(tx.QueryRow(ctx, `update webhooks set url = $3, events = $4, disabled = $5,
				update_time = now(), version = version + 1
			where organization_id = $1 and id = $2 returning `+webhookColumns,
			org, id, cur.URL, eventStrings(cur.Events), cur.Disabled))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, org, name)
	})
	return out, err
}

// DeleteWebhook implements webhook.Store.
func (db *DB) DeleteWebhook(ctx context.Context, org, id uuid.UUID, version int64) (integration.SecretDestruction, error) {
	name := webhook.Name(org, id)
	var d integration.SecretDestruction
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var (
			cur  int64
			path string
		)
		err := tx.QueryRow(ctx, `select version, secret_path from webhooks
			where organization_id = $1 and id = $2 and secret_version > 0 for update`, org, id).Scan(&cur, &path)
		if err != nil {
			return translate(err, name)
		}
		if version != 0 && version != cur {
			return apperr.EtagMismatch()
		}
		if _, err := tx.Exec(ctx, `delete from webhooks where organization_id = $1 and id = $2`, org, id); err != nil {
			return err
		}
		d = integration.SecretDestruction{Org: org, Path: path}
		if err := tx.QueryRow(ctx, `insert into secret_destructions (organization_id, secret_path) values ($1, $2) returning id`,
			org, path).Scan(&d.ID); err != nil {
			return err
		}
		return appendAudit(ctx, tx, org, name)
	})
	return d, err
}

// ListWebhookDeliveries implements webhook.Store, newest first.
func (db *DB) ListWebhookDeliveries(ctx context.Context, org, webhookID uuid.UUID, p page.Request) ([]webhook.Delivery, error) {
	before := p.AfterSeq
	if before == 0 {
		before = math.MaxInt64
	}
	rows, err := db.pool.Query(ctx, `select `+deliveryColumns+` from webhook_deliveries d
		where d.organization_id = $1 and d.webhook_id = $2 and d.id < $3 order by d.id desc limit $4`,
		org, webhookID, before, p.Size+1)
	if err != nil {
		return nil, translate(err, "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (webhook.Delivery, error) { return scanDelivery(r) })
	return out, translate(err, "")
}

// ReapPendingWebhooks implements webhook.Store. It runs for every
// organization: it is background work, not an API query.
func (db *DB) ReapPendingWebhooks(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `delete from webhooks where secret_version = 0 and create_time < $1
			returning organization_id, id, secret_path`, cutoff)
		if err != nil {
			return err
		}
		type reaped struct {
			org, id uuid.UUID
			path    string
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (reaped, error) {
			var x reaped
			return x, r.Scan(&x.org, &x.id, &x.path)
		})
		if err != nil {
			return err
		}
		for _, x := range list {
			if _, err := tx.Exec(ctx, `delete from idempotency_keys where organization_id = $1 and resource_name = $2`,
				x.org, webhook.Name(x.org, x.id)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `insert into secret_destructions (organization_id, secret_path) values ($1, $2)`, x.org, x.path); err != nil {
				return err
			}
		}
		n = len(list)
		return nil
	})
	return n, err
}

// ClaimWebhookDeliveries implements webhook.Store. It runs for every
// organization (background work). The lease is committed before anything
// is sent, so no transaction stays open during HTTP calls.
func (db *DB) ClaimWebhookDeliveries(ctx context.Context, now, lease time.Time, limit int) ([]webhook.Claim, error) {
	var out []webhook.Claim
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// A disabled webhook receives nothing: its due deliveries fail.
		if _, err := tx.Exec(ctx, `update webhook_deliveries d
			set status = 'failed', last_error = 'webhook disabled before delivery', next_attempt_time = $1
			from webhooks w
			where d.status = 'pending' and d.next_attempt_time <= $1
			  and w.organization_id = d.organization_id and w.id = d.webhook_id and w.disabled`, now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `with due as (
				select d.organization_id, d.id from webhook_deliveries d
				join webhooks w on w.organization_id = d.organization_id and w.id = d.webhook_id
				where d.status = 'pending' and d.next_attempt_time <= $1 and not w.disabled and w.secret_version > 0
				order by d.next_attempt_time, d.id
				limit $3
				for update of d skip locked
			)
			update webhook_deliveries d set next_attempt_time = $2
			from due, webhooks w
			where d.organization_id = due.organization_id and d.id = due.id
			  and w.organization_id = d.organization_id and w.id = d.webhook_id
			returning `+deliveryColumns+`, w.url, w.secret_path, w.secret_version`, now, lease, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (webhook.Claim, error) {
			var c webhook.Claim
			d, err := scanDelivery(r, &c.URL, &c.SecretPath, &c.SecretVersion)
			c.Delivery, c.Lease = d, lease
			return c, err
		})
		return err
	})
	return out, err
}

// RecordWebhookAttempt implements webhook.Store.
func (db *DB) RecordWebhookAttempt(ctx context.Context, c webhook.Claim, a webhook.Attempt) (bool, error) {
	tag, err := db.pool.Exec(ctx, `update webhook_deliveries set status = $4, attempts = $5, last_status_code = $6,
			last_error = $7, next_attempt_time = $8, deliver_time = $9
		where organization_id = $1 and id = $2 and status = 'pending' and next_attempt_time = $3`,
		c.Org, c.ID, c.Lease, a.Status, a.Attempts, a.LastStatusCode, truncate(a.LastError, 500), a.NextAttemptTime, a.DeliverTime)
	if err != nil {
		return false, translate(err, "")
	}
	return tag.RowsAffected() == 1, nil
}
