// All background work is River jobs on one client per replica (New, with
// the domain packages' Extensions). There is no ticker goroutine, no
// outbox drained with leases, no second backoff implementation.
//
// Kinds, queues, uniqueness and retries:
//
//	kind                queue        unique                               retries
//	sweep               maintenance  per period (periodic, leader only)   shared policy (Backoff), 5 attempts
//	check_tenant_batch  checks       per (org, tenant) while available,   shared policy, 5 attempts; snoozes for
//	                                 scheduled, running or retryable      Retry-After and to continue a long batch
//	destroy_secret      maintenance  per path while pending               shared policy, 36 attempts (~30 h)
//	janitor             maintenance  per period (periodic, leader only)   shared policy, 5 attempts
//	deliver_webhook     webhooks     none (one job per delivery row)      webhook.Backoff: 1m doubling to 1h, 12 attempts
//	renew_credentials   maintenance  per period (periodic, leader only)   shared policy, 5 attempts (internal/provision/renew.go)
//
// The shared policy (retry.go): Classify decides by the error's apperr kind
// whether a job is retried (transient kinds), cancelled (a retry cannot
// help) or done (NotFound: its subject is gone); NextRetry paces what is
// retried: 15s doubling, capped at 1h, plus up to 20% jitter.
//
// Per-tenant limits hold across replicas and are applied before a job is
// taken: the sweep enqueues one check_tenant_batch per customer tenant with
// due integrations, unique while it waits or runs, so a tenant has at most
// one batch in the whole fleet, and the batch runs at most
// Config.PerTenant checks at once. A replica runs at most Concurrency ×
// PerTenant checks at once (its check slots) over up to twice Concurrency
// batches, so the slots a batch leaves while it winds down go to another
// tenant's batch. A tenant Microsoft answered with 429 +
// Retry-After is recorded in tenant_throttles (Postgres, every replica
// sees it): the batch snoozes until then (River JobSnooze, not a sleep) and
// the sweep schedules the tenant's next batch at or after it.
//
// A batch reads its targets a page at a time (Fleet.ListDueTargets: one
// query per page, each integration with its active credential and tenant,
// and the tenant's throttle; at most batchReaders batches of a replica
// read at once, so that a sweep's start does not open a connection per
// batch)
// and runs each check in two parts (Checker): Check, the calls to Vault and
// Microsoft, holds one of the tenant's PerTenant slots; Commit, the record,
// runs after the slot is freed, while the tenant's next check calls
// Microsoft, and joins the other batches' concurrent records in one group
// (verify's groupWriter). The batch waits for its records before it ends,
// snoozes or fails, so a batch that dies leaves its unrecorded checks due.
//
// A crash strands only the batches that were running (one job per tenant,
// not one per waiting integration), and a batch is short (Config.BatchSlice,
// then it snoozes and continues as the same job), so the rescue can come
// soon: River's rescuer runs on the elected leader with the leader's
// RescueStuckJobsAfter and applies to every kind, which is why every kind
// is kept shorter than it (sweep 2m, janitor 1m, destroy 1m, delivery
// timeout + 30s, batch BatchSlice + CheckTimeout + 10s) and why every
// replica must run with the same setting. A rescued batch re-lists what is
// still due: integrations checked before the crash moved their last check
// time and are not checked again.
//
// On-demand checks (CheckIntegration) do not go through the queue.
//
// The former secret_destructions outbox is no longer written: every
// destruction is a destroy_secret job. MoveSecretOutbox turns the rows a
// previous version left there into jobs at start-up. The table is dropped
// in a later release, once every deployment has started this version
// (dropping it now would lose rows queued before the upgrade).
package jobs
