// Package microsoft is dzconnect's adapter for Microsoft's APIs: Entra
// tokens (azidentity, client secret or certificate), Microsoft Graph
// (msgraph-sdk-go), Azure RBAC (armauthorization/v2), Log Analytics queries
// (monitor/azquery), and plain HTTPS where no Azure SDK module is served
// (the ARM workspace GET, Defender for Endpoint, Defender for Cloud Apps).
// Every endpoint is configurable per cloud (Config.Clouds,
// LoadEndpointsFile), with an extra trusted CA bundle, so the same code
// runs against sovereign clouds and against msftsim.
//
// It owns its types (API, Credentials, Token, Probe, Workspace, Grant,
// Application, ServicePrincipal, RoleAssignment, ...) and imports no
// domain package: internal/verify reaches it through its own small
// interfaces, adapted in internal/app (verifyms.go).
//
// # Shape
//
//   - Client: one per process; the shared transport and the clouds.
//   - Session (Client.NewSession): one application's conversation with one
//     tenant, with a credential of its own so no token outlives it; Token,
//     Probe and Query only read.
//   - Directory (Client.NewDirectory): the tenant's directory and Azure
//     RBAC with the organization's provisioner; reads and writes
//     (applications, passwords, key credentials, service principals, app
//     role and directory role assignments, the app-management policy, ARM
//     role assignments and role definitions, workspaces, queries).
//
// # Retries
//
// One HTTP transport is shared by every call and is the only place
// requests are repeated; the SDKs' own retry policies are off, so attempts
// never multiply. Every request declares (Retry, on its context) whether
// it may be sent again blindly:
//
//   - Idempotent: reads, PUT to a deterministic name (ARM role
//     assignments: RoleAssignmentName), DELETE, PATCH that upserts by a key
//     (applications by uniqueName) or sends a whole list (keyCredentials),
//     removePassword, Log Analytics queries, token requests. Retried after
//     429 and 503 with Retry-After (waiting at least what Microsoft asked)
//     and after 500/502/503/504 and transport errors (jittered backoff).
//   - NotIdempotent: POST creates (service principals, app role and
//     directory role assignments) and addPassword. Sent again by the
//     transport only when the failure proves it did not land: a 429, or a
//     transport error before any of the request was written. After any
//     other failure (5xx, timeout, connection lost after sending) the
//     Directory method re-reads before deciding: "already exists" and
//     "found on re-read" are success; addPassword removes a credential
//     whose answer (and so its secret) was lost, then adds again.
//
// Retry-After is always honoured: the waits of one call share
// Config.MaxThrottleWait and never run past the context's deadline; a
// wait that does not fit returns mserr.ClassThrottled with RetryAfter, and
// the caller's later requests to that host wait out the same window.
//
// Errors are *mserr.Error, classified by package mserr; whether an error
// may be replication lag is mserr.IsReplicationLag, the one definition.
package microsoft
