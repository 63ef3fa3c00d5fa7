// Package verify proves that an integration works and decides its outcome.
//
// A check runs, in order, each step recorded with status, duration, the
// Microsoft error code seen and a remedy: the secret is in Vault; a fresh
// token from the customer tenant for every API the integration uses;
// granted permissions (the tokens' roles) against the catalog, missing and
// extra; one data-plane probe per API; credential expiry against the warning
// window. The outcome:
//
//   - blocked-by-policy: a customer policy (Conditional Access) refused;
//   - broken: a step failed;
//   - propagating: every failure is one Microsoft documents as replication
//     lag and the integration changed within the settle window;
//   - degraded: works, with warnings (optional permission missing, expiry
//     near, Microsoft unreachable for a probe, check cut short);
//   - healthy: everything passed. A product that is not licensed in the
//     tenant makes its steps "unavailable" and does not count against it.
//
// Each check opens a new Microsoft session, so tokens are never reused
// across checks (and therefore never across a change).
package verify
