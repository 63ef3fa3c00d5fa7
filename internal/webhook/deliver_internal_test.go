package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr         string
		allowPrivate bool
		refused      bool
	}{
		{"169.254.169.254:80", true, true}, // cloud metadata
		{"[fe80::1]:443", true, true},
		{"0.0.0.0:443", true, true},
		{"224.0.0.1:443", true, true},
		{"100.100.100.200:80", true, true}, // Alibaba metadata (CGNAT range)
		{"168.63.129.16:80", true, true},   // Azure WireServer
		{"[::ffff:169.254.169.254]:80", true, true},
		{"127.0.0.1:8080", false, true},
		{"10.1.2.3:443", false, true},
		{"192.168.1.1:443", false, true},
		{"[fd00:ec2::254]:80", false, true},       // AWS IPv6 metadata (unique local)
		{"0.1.2.3:443", true, true},               // "this network"
		{"198.18.0.1:443", true, true},            // benchmarking
		{"240.0.0.1:443", true, true},             // reserved
		{"255.255.255.255:443", true, true},       // broadcast
		{"192.0.0.170:443", true, true},           // IETF assignments (NAT64 discovery)
		{"[64:ff9b::a9fe:a9fe]:80", true, true},   // NAT64 of 169.254.169.254
		{"[64:ff9b::a00:1]:80", false, true},      // NAT64 of 10.0.0.1
		{"[64:ff9b:1::a9fe:a9fe]:80", true, true}, // NAT64 local-use
		{"[2002:a9fe:a9fe::1]:80", true, true},    // 6to4 of 169.254.169.254
		{"[2001:0:4136:e378::1]:80", true, true},  // Teredo
		{"[::a9fe:a9fe]:80", true, true},          // IPv4-compatible 169.254.169.254
		{"[fd00:ec2::254]:80", true, true},        // AWS metadata, private networks allowed
		{"[fd20:ce::254]:80", true, true},         // GCP metadata over IPv6
		{"[100::1]:443", true, true},              // discard-only
		{"127.0.0.1:8080", true, false},
		{"10.1.2.3:443", true, false},
		{"203.0.113.7:443", false, false},
		{"[2001:db8::1]:443", false, false},
		{"[2606:4700::1111]:443", false, false}, // public IPv6
		{"198.20.0.1:443", false, false},        // just past the benchmarking range
	} {
		if err := checkAddress(tc.addr, tc.allowPrivate); (err != nil) != tc.refused {
			t.Errorf("%s (allowPrivate %v): err %v, want refused=%v", tc.addr, tc.allowPrivate, err, tc.refused)
		}
	}
}

// TestRetryAtAgrees: Work (which records the next attempt time in the log)
// and NextRetry (which schedules it in River) compute the same time, on the
// published schedule with its jitter.
func TestRetryAtAgrees(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for attempt := 1; attempt <= 12; attempt++ {
		job := &river.Job[DeliverArgs]{JobRow: &rivertype.JobRow{ID: 42, Attempt: attempt, AttemptedAt: &at}}
		a, b := retryAt(job), (&Deliverer{}).NextRetry(job)
		base := Backoff(attempt, 0)
		if !a.Equal(b) || a.Before(at.Add(base)) || a.After(at.Add(base*11/10)) {
			t.Fatalf("attempt %d: Work %v, NextRetry %v; want equal within %v..+10%%", attempt, a, b, base)
		}
	}
}

// TestTransportErrorHidesPorts: closed (refused), filtered (timeout) and
// open-but-not-HTTPS (TLS failure) ports record the same text, so
// deliveries cannot be used to scan a network; DNS and refused addresses
// keep their own.
func TestTransportErrorHidesPorts(t *testing.T) {
	closed := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	filtered := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tlsOpen := &tls.CertificateVerificationError{Err: errors.New("x509: unknown authority")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	for _, err := range []error{closed, filtered, tlsOpen, reset, context.DeadlineExceeded, io.ErrUnexpectedEOF} {
		if got := transportError(&url.Error{Op: "Post", URL: "https://10.0.0.1:22/x", Err: err}); !errors.Is(got, errUnreachable) {
			t.Errorf("%v: recorded %q, want the one unreachable text", err, got)
		}
	}
	if got := transportError(&url.Error{Op: "Post", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}); errors.Is(got, errUnreachable) || !strings.Contains(got.Error(), "resolve") {
		t.Errorf("DNS failure recorded %q", got)
	}
	if got := transportError(&url.Error{Op: "Post", Err: &net.OpError{Op: "dial", Err: errAddressRefused}}); !errors.Is(got, errAddressRefused) {
		t.Errorf("refused address recorded %q", got)
	}
}
