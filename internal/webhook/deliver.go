package webhook

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/event"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Delivery defaults.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 12
	// FirstRetry is the delay after the first failed attempt; each further
	// failure doubles it, up to MaxRetry.
	FirstRetry = time.Minute
	MaxRetry   = time.Hour
	// QueueWebhooks is the River queue of deliveries.
	QueueWebhooks = "webhooks"
)

// DelivererOptions tune a Deliverer; zero values take the defaults.
type DelivererOptions struct {
	// Client sends the requests (tests inject one). Redirects are refused
	// whatever the client says: a copy with CheckRedirect set is used.
	Client *http.Client
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// MaxAttempts is the number of attempts before a delivery is failed
	// (default 12): the River job's MaxAttempts.
	MaxAttempts int
	// Workers is how many deliveries one replica sends at once (default 16;
	// negative: this replica sends none).
	Workers int
	// PerOrganization is how many of them may be one organization's
	// (default a quarter of Workers, at least 2): an organization whose
	// receivers hang until the timeout holds at most this many workers, and
	// everyone else's deliveries keep flowing.
	PerOrganization int
	// AllowPrivateNetworks lets deliveries reach loopback and private
	// addresses (development, on-premises receivers). Off by default:
	// webhooks must not become a way into the service's own network.
	AllowPrivateNetworks bool
}

// DeliverArgs is the River job that sends one delivery.
type DeliverArgs struct {
	Org      uuid.UUID `json:"org"`
	Delivery int64     `json:"delivery"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "deliver_webhook" }

// Notifier implements event.Notifier: in the caller's unit of work it
// writes one delivery row per subscribed webhook (the log the API lists)
// and one deliver_webhook job per row, so an event is sent if and only if
// its change committed.
type Notifier struct {
	store       Store
	jobs        *jobs.Inserter
	maxAttempts int
}

var _ event.Notifier = (*Notifier)(nil)

// NewNotifier returns a Notifier; maxAttempts is DelivererOptions.MaxAttempts.
func NewNotifier(store Store, ins *jobs.Inserter, maxAttempts int) *Notifier {
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	return &Notifier{store: store, jobs: ins, maxAttempts: maxAttempts}
}

// Notify implements event.Notifier.
func (n *Notifier) Notify(ctx context.Context, tx uow.Tx, org uuid.UUID, ev event.Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	ids, err := n.store.InsertDeliveries(ctx, tx, org, Event(ev.Type), ev.Resource(), payload)
	if err != nil {
		return err
	}
	return n.queue(ctx, tx, org, ids)
}

// NotifyMany queues the deliveries of several events, of any
// organizations, in tx, as Notify does for each: one statement for the
// deliveries and one for their jobs (the sweep's grouped records; see
// verify's ManyNotifier).
func (n *Notifier) NotifyMany(ctx context.Context, tx uow.Tx, orgs []uuid.UUID, evs []event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	ds := make([]NewDeliveries, len(evs))
	for i, ev := range evs {
		payload, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encoding event: %w", err)
		}
		ds[i] = NewDeliveries{Org: orgs[i], Event: Event(ev.Type), Resource: ev.Resource(), Payload: payload}
	}
	refs, err := n.store.InsertDeliveriesMany(ctx, tx, ds)
	if err != nil || len(refs) == 0 {
		return err
	}
	params := make([]river.InsertManyParams, 0, len(refs))
	for _, r := range refs {
		params = append(params, river.InsertManyParams{Args: DeliverArgs{Org: r.Org, Delivery: r.ID},
			InsertOpts: &river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: n.maxAttempts}})
	}
	return n.jobs.InsertMany(ctx, tx, params)
}

// queue inserts one deliver_webhook job per delivery in tx.
func (n *Notifier) queue(ctx context.Context, tx uow.Tx, org uuid.UUID, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, 0, len(ids))
	for _, id := range ids {
		params = append(params, river.InsertManyParams{Args: DeliverArgs{Org: org, Delivery: id},
			InsertOpts: &river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: n.maxAttempts}})
	}
	return n.jobs.InsertMany(ctx, tx, params)
}

// Deliverer is the deliver_webhook worker. Several replicas run it: River
// hands each job to one of them; a replica killed mid-send loses no
// delivery (River rescues the job and it is sent again: delivery is at
// least once, and receivers de-duplicate on the Dzconnect-Delivery
// header). Retries follow Backoff (1m doubling to 1h, 12 attempts).
type Deliverer struct {
	river.WorkerDefaults[DeliverArgs]
	tx      uow.Runner
	store   Store
	secrets SecretReader
	log     *slog.Logger
	opts    DelivererOptions

	mu       sync.Mutex
	inFlight map[uuid.UUID]int // deliveries being sent, per organization
}

// SecretReader reads signing secrets; integration.SecretStore (the Vault
// adapter) is one.
type SecretReader interface {
	ReadClientSecret(ctx context.Context, path string, version int64) (string, error)
}

// NewDeliverer returns a Deliverer. secrets is the Vault adapter holding
// the signing secrets.
func NewDeliverer(tx uow.Runner, store Store, secrets SecretReader, log *slog.Logger, opts DelivererOptions) *Deliverer {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Workers == 0 {
		opts.Workers = 16
	}
	if opts.PerOrganization <= 0 {
		opts.PerOrganization = max(2, opts.Workers/4)
	}
	var c http.Client
	if opts.Client != nil {
		c = *opts.Client
	} else {
		c.Transport = defaultTransport(opts.AllowPrivateNetworks)
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts.Client = &c
	return &Deliverer{tx: tx, store: store, secrets: secrets, log: log, opts: opts, inFlight: map[uuid.UUID]int{}}
}

// Extension registers the worker and its queue on the one River client.
func (d *Deliverer) Extension() jobs.Extension {
	return jobs.Extension{Queue: QueueWebhooks, MaxWorkers: d.opts.Workers, Register: func(w *river.Workers) {
		river.AddWorker(w, d)
	}}
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
	// refusedNets are never delivered to, private networks allowed or not:
	// ranges that are not the public internet, and IPv6 forms that embed
	// an IPv4 address a gateway would translate (to a metadata service or
	// a private network, past the checks above).
	refusedNets = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),      // "this network" (RFC 6890)
		netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
		netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking (RFC 2544)
		netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and 255.255.255.255
		netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated)
		netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 well-known prefix (RFC 6052)
		netip.MustParsePrefix("64:ff9b:1::/48"), // NAT64 local-use prefix (RFC 8215)
		netip.MustParsePrefix("2002::/16"),      // 6to4 (RFC 3056)
		netip.MustParsePrefix("2001::/32"),      // Teredo (RFC 4380)
		netip.MustParsePrefix("fd00:ec2::/32"),  // AWS instance metadata over IPv6 (fd00:ec2::254)
		netip.MustParsePrefix("fd20:ce::/32"),   // GCP metadata over IPv6 (fd20:ce::254)
		netip.MustParsePrefix("100::/64"),       // discard-only (RFC 6666)
	}
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
	case slices.ContainsFunc(refusedNets, func(p netip.Prefix) bool { return p.Contains(ip) }):
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

// jitterOf is a job's jitter fraction for one attempt: derived from the job
// and the attempt, so that Work (which records the next attempt time) and
// NextRetry (which schedules it) agree, and jobs failed together spread.
func jitterOf(jobID int64, attempt int) float64 {
	h := fnv.New64a()
	_ = binary.Write(h, binary.LittleEndian, [2]int64{jobID, int64(attempt)})
	return float64(h.Sum64()>>11) / (1 << 53)
}

// retryAt is when attempt+1 runs after attempt (1, 2, ...), which started
// at attemptedAt (River's, known to Work and NextRetry alike), failed.
func retryAt(job *river.Job[DeliverArgs]) time.Time {
	start := time.Now()
	if job.AttemptedAt != nil {
		start = *job.AttemptedAt
	}
	return start.Add(Backoff(job.Attempt, jitterOf(job.ID, job.Attempt))).Truncate(time.Microsecond)
}

// Timeout bounds one attempt: the request and the bookkeeping.
func (d *Deliverer) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return d.opts.Timeout + 30*time.Second
}

// NextRetry implements the published schedule (Backoff).
func (d *Deliverer) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	return retryAt(job)
}

// fairnessWait is how long a delivery over its organization's share waits
// before it is tried again (plus up to as much jitter).
const fairnessWait = time.Second

// acquire takes one of org's PerOrganization slots on this replica.
func (d *Deliverer) acquire(org uuid.UUID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inFlight[org] >= d.opts.PerOrganization {
		return false
	}
	d.inFlight[org]++
	return true
}

func (d *Deliverer) release(org uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inFlight[org]--; d.inFlight[org] <= 0 {
		delete(d.inFlight, org)
	}
}

// errDisabled is recorded for deliveries of a webhook disabled meanwhile.
const errDisabled = "webhook disabled before delivery"

// Work sends one attempt of a delivery and records its outcome in the
// delivery log. A failed attempt returns an error so River retries it; the
// last one is recorded as failed.
func (d *Deliverer) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	// Fairness: an organization over its share of this replica's workers
	// waits (a snooze uses no attempt) so that others' deliveries run.
	if !d.acquire(job.Args.Org) {
		return river.JobSnooze(fairnessWait + time.Duration(jitterOf(job.ID, job.Attempt)*float64(fairnessWait)))
	}
	defer d.release(job.Args.Org)
	conn := d.tx.Conn()
	c, err := d.store.GetDeliveryForSend(ctx, conn, job.Args.Org, job.Args.Delivery)
	if apperr.Is(err, apperr.NotFound) {
		return nil // the webhook was deleted, and its deliveries with it
	}
	if err != nil {
		return err
	}
	if c.Status != StatusPending {
		return nil // recorded by an attempt whose completion River did not see
	}
	now := time.Now()
	started := now // River's attempted_at: when this attempt started
	if job.AttemptedAt != nil {
		started = *job.AttemptedAt
	}
	a := Attempt{Attempts: c.Attempts, LastAttemptTime: &started}
	if c.Disabled {
		a.Status, a.NextAttemptTime, a.LastError = StatusFailed, now, errDisabled
		return d.store.RecordWebhookAttempt(ctx, conn, c.Org, c.ID, a)
	}
	code, sendErr := d.send(ctx, c)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: River runs the job again
	}
	now = time.Now()
	a.Attempts, a.LastStatusCode = c.Attempts+1, code
	last := job.Attempt >= job.MaxAttempts
	switch {
	case sendErr == nil:
		a.Status, a.NextAttemptTime, a.DeliverTime = StatusDelivered, now, &now
	case last:
		a.Status, a.NextAttemptTime, a.LastError = StatusFailed, now, sendErr.Error()
	default:
		a.Status, a.LastError = StatusPending, sendErr.Error()
		a.NextAttemptTime = retryAt(job)
	}
	log := d.log.With("delivery", DeliveryName(c.Org, c.Webhook, c.ID), "attempt", a.Attempts, "status_code", code)
	if err := d.store.RecordWebhookAttempt(ctx, conn, c.Org, c.ID, a); err != nil {
		log.ErrorContext(ctx, "recording webhook attempt failed; it will be retried", "error", err)
		return err
	}
	if sendErr != nil {
		log.InfoContext(ctx, "webhook delivery attempt failed", "error", a.LastError, "next_status", a.Status)
		return sendErr // River retries (or, after the last attempt, discards) the job
	}
	return nil
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
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dzconnect-webhooks/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, c.Payload))
	req.Header.Set(HeaderEvent, string(c.Event))
	req.Header.Set(HeaderDelivery, DeliveryName(c.Org, c.Webhook, c.ID))
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return 0, transportError(err)
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

// errUnreachable is recorded for every failure before an HTTP answer
// other than DNS and refused addresses.
var errUnreachable = errors.New("the receiver could not be reached: no connection, no answer within the timeout, or a TLS failure (check the URL, the port, the receiver's certificate and that it answers within the webhook timeout)")

// transportError describes a failed request by category only: neither the
// URL nor the network's own error text (which would let a webhook owner
// map the service's network) is recorded.
func transportError(err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, errAddressRefused):
		return errAddressRefused
	case errors.As(err, &dnsErr):
		return errors.New("the host name does not resolve")
	}
	// Refused, reset, timed out or a TLS failure are one answer: telling
	// them apart would tell a webhook's owner which ports of a host are
	// closed, filtered or open, i.e. make dzconnect a port scanner.
	return errUnreachable
}
