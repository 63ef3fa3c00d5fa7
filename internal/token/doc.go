// Package token is "tokens instead of secrets" (docs/credentials.md):
// IssueAccessToken hands a platform a Microsoft access token for one of an
// integration's APIs, so the platform never holds the integration's
// secret, and AcknowledgeCredential lets platforms that must hold it say
// which credential they use, so a rotation's old credential is removed as
// soon as nobody needs it.
//
// Issuance. A token is obtained with the integration's active credential
// exactly as checks obtain theirs (the Sessions port, wired in
// internal/app to internal/microsoft's credential construction: client
// secret or certificate client assertion) and cached in this process per
// (organization, integration, API, credential fingerprint). The
// fingerprint is the active credential's ID and Vault version (for shared
// mode: the shared application's secret change time), read from Postgres
// on every call, so any credential change — a rotation's activation, a new
// secret, on any replica — changes the key and the next call fetches a
// new token; entries of old keys age out of the bounded LRU. A cached
// token is refreshed when less than RefreshBefore (5 minutes) or 10% of its
// lifetime remains: callers keep getting the cached token while one
// background fetch runs; an expired or missing entry is fetched with the
// caller waiting. Either way one fetch per key is in flight at a time
// (single flight): N concurrent first calls make one token request.
//
// Tokens are never logged, stored, put in errors or traces: the cache
// holds them in memory only and errors carry Microsoft's classified
// description (mserr) and remedy.
//
// Counting. Each issuance (cache hit or not) increments an in-memory
// counter per (organization, API key, integration, API, hour) and a
// Prometheus counter; Flush adds the counters to token_issuances in one
// transaction (upsert), appending one audit event the first time a
// (key, integration, API, hour) row is made anywhere. Service.Run flushes
// every FlushInterval and at shutdown; a crash loses at most one interval
// of counts (never an audit-worthy fact beyond "this key issued tokens for
// this integration this hour", which the next issuance re-records).
//
// Consumers. A platform's first AcknowledgeCredential registers it for the
// integration (registration is implicit; the consumer name is the
// caller's). When, after an acknowledgement, every registered consumer is
// on the active credential, a credential retiring after a rotation has
// its overlap ended now and its removal queued in the acknowledgement's
// transaction (Retirer, internal/provision). A consumer still on another
// credential when the retiring one is within AnnounceMargin (24 hours) of
// its overlap end — or half-way through an overlap shorter than twice
// that — is announced once per retiring credential: webhook event
// credential.consumer_stale and metric
// dzconnect_credential_consumers_stale_total, by a periodic job on the
// leader (every AnnounceInterval).
package token
