package token

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// IssueMethod is IssueAccessToken's full gRPC method, the audit method of
// the aggregated issuance events.
const IssueMethod = "/dzconnect.v1.TokenService/IssueAccessToken"

// keepCounts: counters a failing flush keeps for the next one, at most
// this old (a deleted organization's counts cannot be written).
const keepCounts = 24 * time.Hour

// Run flushes the issuance counters every FlushInterval until ctx ends,
// then once more (on shutdown). A crash loses at most one interval.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.Flush(fctx); err != nil {
				s.log.Warn("access token counts not written at shutdown", "error", err)
			}
			cancel()
			return
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				s.log.WarnContext(ctx, "access token counts not written; kept for the next flush", "error", err)
			}
		}
	}
}

// Flush adds the counters gathered since the last flush to
// token_issuances in one transaction, in key order (so replicas flushing
// at once never deadlock), and appends one audit event per (key,
// integration, API, hour) the first time its row is made. On failure the
// counts are kept for the next flush.
func (s *Service) Flush(ctx context.Context) error {
	s.countMu.Lock()
	counts := s.counts
	s.counts = map[countKey]*IssuanceCount{}
	s.countMu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	keys := make([]countKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b countKey) int {
		return cmp.Or(
			cmp.Compare(a.org.String(), b.org.String()),
			a.window.Compare(b.window),
			cmp.Compare(a.key.String(), b.key.String()),
			cmp.Compare(a.subject, b.subject),
			cmp.Compare(a.integration.String(), b.integration.String()),
			cmp.Compare(a.api, b.api),
		)
	})
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		for _, k := range keys {
			c := counts[k]
			inserted, err := s.store.AddTokenIssuances(ctx, tx, *c)
			if err != nil {
				return fmt.Errorf("adding access token counts: %w", err)
			}
			if inserted && s.audit != nil {
				actor := auth.ServiceAdminActor
				switch {
				case c.Subject != "":
					actor = c.Subject // as auth.Principal.Actor names a workload identity
				case c.Key != uuid.Nil:
					actor = resource.APIKey{Org: c.Org, Key: c.Key}.String()
				}
				actx := audit.WithCall(ctx, audit.Call{Actor: actor, Method: IssueMethod,
					RequestID: "access-tokens:" + string(c.API) + ":" + c.Window.Format("2006-01-02T15Z")})
				name := resource.Integration{Org: c.Org, Tenant: k.tenant, Integration: c.Integration}.String()
				if err := s.audit.AppendAudit(actx, tx, c.Org, name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		s.merge(counts)
	}
	return err
}

// merge puts unwritten counts back (dropping those older than keepCounts).
func (s *Service) merge(counts map[countKey]*IssuanceCount) {
	cutoff := s.now().Add(-keepCounts)
	s.countMu.Lock()
	defer s.countMu.Unlock()
	for k, c := range counts {
		if k.window.Before(cutoff) {
			continue
		}
		if cur := s.counts[k]; cur != nil {
			cur.Issued += c.Issued
			cur.Fetched += c.Fetched
			continue
		}
		s.counts[k] = c
	}
}
