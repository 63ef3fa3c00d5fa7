package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Delivery defaults.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 12
	DefaultBatchSize   = 16
	// FirstRetry is the delay after the first failed attempt; each further
	// failure doubles it, up to MaxRetry.
	FirstRetry = time.Minute
	MaxRetry   = time.Hour
)

// DelivererOptions tune a Deliverer; zero values take the defaults.
type DelivererOptions struct {
	// Client sends the requests (tests inject one). Redirects are refused
	// whatever the client says: a copy with CheckRedirect set is used.
	Client *http.Client
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// MaxAttempts is the number of attempts before a delivery is failed
	// (default 12).
	MaxAttempts int
	// BatchSize is how many deliveries one claim takes, sent concurrently
	// (default 16).
	BatchSize int
	// Now is the clock (default time.Now); tests drive retries with it.
	Now func() time.Time
	// Jitter returns a random fraction in [0, 1) (default math/rand/v2).
	Jitter func() float64
	// AllowPrivateNetworks lets deliveries reach loopback and private
	// addresses (development, on-premises receivers). Off by default:
	// webhooks must not become a way into the service's own network.
	AllowPrivateNetworks bool
}

// Deliverer sends due deliveries. Several replicas may run one each: a
// claim leases rows with FOR UPDATE SKIP LOCKED, so each delivery is sent
// by one of them; a replica killed mid-send loses no delivery (the lease
// runs out and another replica sends it again: delivery is at least once,
// and receivers de-duplicate on the Dzconnect-Delivery header).
type Deliverer struct {
	store   Store
	secrets SecretReader
	log     *slog.Logger
	opts    DelivererOptions
}

// SecretReader reads signing secrets; integration.SecretStore (the Vault
// adapter) is one.
type SecretReader interface {
	ReadClientSecret(ctx context.Context, path string, version int64) (string, error)
}

// NewDeliverer returns a Deliverer. secrets is the Vault adapter holding
// the signing secrets.
func NewDeliverer(store Store, secrets SecretReader, log *slog.Logger, opts DelivererOptions) *Deliverer {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	var c http.Client
	if opts.Client != nil {
		c = *opts.Client
	} else {
		c.Transport = defaultTransport(opts.AllowPrivateNetworks)
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts.Client = &c
	return &Deliverer{store: store, secrets: secrets, log: log, opts: opts}
}

// defaultTransport is http.DefaultTransport's settings without a proxy (a
// proxy would hide the real destination from the address check) and with
// a dialer that checks the address actually dialled, whatever the URL's
// name resolves to (so DNS rebinding does not help).
func defaultTransport(allowPrivate bool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		return checkAddress(address, allowPrivate)
	}}
	t.DialContext = d.DialContext
	return t
}

// errAddressRefused is recorded for deliveries to refused addresses.
var errAddressRefused = errors.New("address not allowed (loopback, private, link-local or cloud metadata network)")

var (
	cgnat      = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT; Alibaba's metadata service
	wireServer = netip.MustParseAddr("168.63.129.16")   // Azure WireServer / IMDS proxy
)

// checkAddress refuses metadata, link-local, multicast and unspecified
// addresses always, and loopback and private ranges unless allowPrivate.
func checkAddress(address string, allowPrivate bool) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return errAddressRefused
	}
	ip = ip.Unmap()
	switch {
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast(), ip.IsMulticast(),
		ip.IsUnspecified(), cgnat.Contains(ip), ip == wireServer:
		return errAddressRefused
	case !allowPrivate && (ip.IsLoopback() || ip.IsPrivate()):
		return errAddressRefused
	}
	return nil
}

// Backoff returns the delay after the given number of failed attempts
// (1, 2, ...): 1m, 2m, 4m, ... capped at 1h, plus up to 10% jitter
// (jitter is a fraction in [0, 1)).
func Backoff(failed int, jitter float64) time.Duration {
	d := MaxRetry
	if failed >= 1 && failed <= 7 {
		d = min(FirstRetry<<(failed-1), MaxRetry)
	}
	return d + time.Duration(jitter*float64(d)/10)
}

// lease is how long a claim holds a delivery: longer than any attempt.
func (d *Deliverer) lease() time.Duration { return d.opts.Timeout + time.Minute }

// RunOnce sends every delivery due now, batch after batch, and returns how
// many attempts it made.
func (d *Deliverer) RunOnce(ctx context.Context) (int, error) {
	total := 0
	for range 1000 { // a bound, should a clock misbehave
		now := d.opts.Now()
		claims, err := d.store.ClaimWebhookDeliveries(ctx, now, now.Add(d.lease()).Truncate(time.Microsecond), d.opts.BatchSize)
		if err != nil {
			return total, err
		}
		var wg sync.WaitGroup
		for _, c := range claims {
			wg.Go(func() { d.attempt(ctx, c) })
		}
		wg.Wait()
		total += len(claims)
		if len(claims) < d.opts.BatchSize || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
	return total, nil
}

// Run calls RunOnce every interval until ctx ends.
func (d *Deliverer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := d.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.ErrorContext(ctx, "webhook delivery pass failed", "error", err)
		} else if n > 0 {
			d.log.DebugContext(ctx, "webhook delivery pass", "attempts", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// attempt sends one claimed delivery and records the outcome.
func (d *Deliverer) attempt(ctx context.Context, c Claim) {
	code, err := d.send(ctx, c)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and the delivery is retried
	}
	now := d.opts.Now()
	a := Attempt{Attempts: c.Attempts + 1, LastStatusCode: code}
	switch {
	case err == nil:
		a.Status, a.NextAttemptTime, a.DeliverTime = StatusDelivered, now, &now
	case a.Attempts >= d.opts.MaxAttempts:
		a.Status, a.NextAttemptTime, a.LastError = StatusFailed, now, err.Error()
	default:
		a.Status, a.LastError = StatusPending, err.Error()
		a.NextAttemptTime = now.Add(Backoff(a.Attempts, d.opts.Jitter()))
	}
	log := d.log.With("delivery", DeliveryName(c.Org, c.Webhook, c.ID), "attempt", a.Attempts, "status_code", code)
	ok, rerr := d.store.RecordWebhookAttempt(ctx, c, a)
	switch {
	case rerr != nil:
		log.ErrorContext(ctx, "recording webhook attempt failed; it will be retried when the lease ends", "error", rerr)
	case !ok:
		log.WarnContext(ctx, "webhook lease lost before the attempt was recorded")
	case err != nil:
		log.InfoContext(ctx, "webhook delivery attempt failed", "error", a.LastError, "next_status", a.Status)
	}
}

// send POSTs the payload, signed, and returns the HTTP status (0 when none
// came back). Its error never contains the secret, the URL (it may carry a
// customer token in its query) or the response body.
func (d *Deliverer) send(ctx context.Context, c Claim) (int, error) {
	secret, err := d.secrets.ReadClientSecret(ctx, c.SecretPath, c.SecretVersion)
	if err != nil {
		return 0, errors.New("signing secret unavailable (Vault); nothing was sent")
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Payload))
	if err != nil {
		return 0, errors.New("invalid webhook URL")
	}
	ts := d.opts.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dzconnect-webhooks/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, c.Payload))
	req.Header.Set(HeaderEvent, string(c.Event))
	req.Header.Set(HeaderDelivery, DeliveryName(c.Org, c.Webhook, c.ID))
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return 0, transportError(ctx, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, fmt.Errorf("receiver answered %s; redirects are not followed: configure the final URL", resp.Status)
	}
	return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
}

// transportError describes a failed request by category only: neither the
// URL nor the network's own error text (which would let a webhook owner
// map the service's network) is recorded.
func transportError(ctx context.Context, err error) error {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		netErr  net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return errors.New("no answer within the timeout")
	case errors.Is(err, errAddressRefused):
		return errAddressRefused
	case errors.As(err, &dnsErr):
		return errors.New("the host name does not resolve")
	case errors.As(err, &certErr):
		return errors.New("TLS: the receiver's certificate is not trusted")
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.As(err, &netErr) && netErr.Timeout():
		return errors.New("no answer within the timeout")
	}
	return errors.New("the request failed (network or TLS error)")
}
