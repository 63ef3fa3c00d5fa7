// Package microsoft is dzconnect's adapter for Microsoft's real
// APIs: Entra tokens through azidentity, Graph probes through
// msgraph-sdk-go, and plain HTTPS for Azure Resource Manager, Log
// Analytics, Defender for Endpoint and Defender for Cloud Apps. Every
// endpoint is configurable per cloud (Config.Clouds, LoadEndpointsFile),
// with an extra trusted CA bundle, so the same code runs against sovereign
// clouds and against msftsim.
//
// One HTTP transport is shared by every session and is the only place calls
// are retried: 429 (and 503 with Retry-After) wait at least what Microsoft
// asked, within Config.MaxThrottleWait and the context's deadline, and
// transient 5xx get a few jittered retries; the SDKs' own retry policies are
// turned off so attempts never multiply. Each session has its own
// credential, so a token is never reused across checks. Errors are
// *mserr.Error, classified by package mserr.
package microsoft
