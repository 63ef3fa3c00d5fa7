package token

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// consumerName is what a consumer may be called.
var consumerName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ValidConsumer reports whether name is a valid consumer name.
func ValidConsumer(name string) bool { return consumerName.MatchString(name) }

// Acknowledgement is what AcknowledgeCredential returns.
type Acknowledgement struct {
	Consumer Consumer
	// BroughtForward: this acknowledgement was the last one a retiring
	// credential waited for; its removal is queued now.
	BroughtForward bool
}

// Acknowledge records that consumer now uses credential cred of the
// integration (registering the consumer on its first acknowledgement).
// One transaction, under the row locks of the integration's live
// credentials (so a rotation's activation or the retirer cannot change
// them half-way):
//
//  1. the consumer row written (upsert) and the call audited;
//  2. when cred is the active credential and every registered consumer
//     is now on it, each retiring credential whose overlap has not ended
//     gets its overlap end set to now and its removal queued
//     (Retirer.QueueRetireNow, a River job inserted in this transaction):
//     the removal cannot be lost after the commit, nor happen without it.
//
// An integration with no registered consumers keeps its full overlap:
// platforms that never registered may hold the old secret.
func (s *Service) Acknowledge(ctx context.Context, org, id uuid.UUID, consumer string, cred uuid.UUID) (Acknowledgement, error) {
	if !ValidConsumer(consumer) {
		return Acknowledgement{}, apperr.Invalid("consumer", "1 to 63 lowercase letters, digits and '-', starting with a letter")
	}
	in, _, err := s.store.LoadCheckTarget(ctx, s.tx.Conn(), org, id)
	if err != nil {
		return Acknowledgement{}, err
	}
	var out Acknowledgement
	err = s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		live, err := s.store.LockLiveCredentials(ctx, tx, org, id)
		if err != nil {
			return err
		}
		var acked *integration.Credential
		var active uuid.UUID
		for i, c := range live {
			if c.ID == cred {
				acked = &live[i]
			}
			if c.State == integration.CredentialActive {
				active = c.ID
			}
		}
		if acked == nil {
			return apperr.New(apperr.FailedPrecondition, "credential %s is not an active or retiring credential of the integration", cred).
				WithReason("CREDENTIAL_NOT_LIVE")
		}
		now := s.now()
		c, err := s.store.UpsertCredentialConsumer(ctx, tx, Consumer{Org: org, Integration: id, Name: consumer, Credential: cred, AcknowledgeTime: now})
		if err != nil {
			return err
		}
		out.Consumer = c
		name := resource.Integration{Org: org, Tenant: in.Tenant, Integration: id}.String()
		if s.audit != nil {
			if err := s.audit.AppendAudit(ctx, tx, org, name+"/consumers/"+consumer); err != nil {
				return err
			}
		}
		if cred != active {
			return nil
		}
		consumers, err := s.store.ListCredentialConsumers(ctx, tx, org, id)
		if err != nil {
			return err
		}
		for _, k := range consumers {
			if k.Credential != active {
				return nil // someone still on another credential: the overlap runs on
			}
		}
		for _, r := range live {
			if r.State != integration.CredentialRetiring || r.OverlapEnd == nil || !r.OverlapEnd.After(now) {
				continue // a fallback kept without an overlap end, or already due
			}
			if err := s.store.EndCredentialOverlap(ctx, tx, org, r.ID, now); err != nil {
				return err
			}
			if err := s.retirer.QueueRetireNow(ctx, tx, org, id, r.ID); err != nil {
				return err
			}
			out.BroughtForward = true
		}
		return nil
	})
	return out, err
}

// Consumers lists an integration's registered consumers.
func (s *Service) Consumers(ctx context.Context, org, id uuid.UUID) ([]Consumer, error) {
	if _, _, err := s.store.LoadCheckTarget(ctx, s.tx.Conn(), org, id); err != nil {
		return nil, err
	}
	return s.store.ListCredentialConsumers(ctx, s.tx.Conn(), org, id)
}

// Announce announces consumers still not on the active credential of an
// integration whose rotated-out credential nears its removal: for each,
// in one transaction, the announcement recorded (once per consumer and
// retiring credential, whichever replica gets there first) and the
// credential.consumer_stale event queued; then the metric. It returns how
// many it announced.
func (s *Service) Announce(ctx context.Context) (int, error) {
	stale, err := s.store.ListStaleConsumers(ctx, s.tx.Conn(), s.now(), s.cfg.AnnounceMargin, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range stale {
		var sent bool
		err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
			ok, err := s.store.MarkConsumerAnnounced(ctx, tx, c.Org, c.Integration, c.Consumer, c.Retiring)
			if err != nil || !ok {
				return err
			}
			sent = true
			in := resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String()
			end := c.OverlapEnd.UTC()
			return s.notify.Notify(ctx, tx, c.Org, event.Event{
				Type: event.CredentialConsumerStale, Time: s.now().UTC(), Organization: resource.Org{Org: c.Org}.String(),
				Integration: in, Kind: string(c.Kind), State: string(integration.CredentialRetiring),
				Consumer: c.Consumer, Credential: in + "/credentials/" + c.Credential.String(),
				RetiringCredential: in + "/credentials/" + c.Retiring.String(), RemoveTime: &end,
				Summary: fmt.Sprintf("consumer %s still uses credential %s; the rotated-out credential %s is removed at %s: "+
					"switch the consumer to the active credential and acknowledge it (AcknowledgeCredential)",
					c.Consumer, c.Credential, c.Retiring, end.Format(time.RFC3339)),
			})
		})
		if err != nil {
			return n, err
		}
		if sent {
			n++
			s.stale.Inc()
			s.log.InfoContext(ctx, "consumer still on a rotated-out credential announced", "organization", c.Org,
				"integration", c.Integration, "consumer", c.Consumer, "retiring", c.Retiring, "remove_time", c.OverlapEnd)
		}
	}
	return n, nil
}

// AnnounceArgs is the periodic job that runs Announce.
type AnnounceArgs struct{}

// Kind implements river.JobArgs.
func (AnnounceArgs) Kind() string { return "announce_stale_consumers" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (AnnounceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance}
}

// Extension registers the announcement job on the one River client: on the
// leader, every AnnounceInterval, unique per period.
func (s *Service) Extension() jobs.Extension {
	every := s.cfg.AnnounceInterval
	return jobs.Extension{
		Queue:    jobs.QueueMaintenance,
		Register: func(w *river.Workers) { river.AddWorker(w, &announceWorker{s: s}) },
		Periodic: []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) {
				return AnnounceArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: every}}
			},
			&river.PeriodicJobOpts{ID: "announce_stale_consumers", RunOnStart: true},
		)},
	}
}

type announceWorker struct {
	river.WorkerDefaults[AnnounceArgs]
	s *Service
}

func (w *announceWorker) Timeout(*river.Job[AnnounceArgs]) time.Duration { return time.Minute }

func (w *announceWorker) Work(ctx context.Context, _ *river.Job[AnnounceArgs]) error {
	_, err := w.s.Announce(ctx)
	return err
}
