package webhook_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/webhook"
)

func TestSignVerify(t *testing.T) {
	secret := webhook.NewSecret()
	body := []byte(`{"type":"integration.state_changed"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := webhook.Sign(secret, now.Unix(), body)
	if !strings.HasPrefix(sig, "v1=") || len(sig) != 3+64 {
		t.Fatalf("signature %q", sig)
	}
	for _, tc := range []struct {
		name            string
		secret, sig, ts string
		body            []byte
		now             time.Time
		want            error
	}{
		{"valid", secret, sig, ts, body, now, nil},
		{"valid among others", secret, "v0=abc, v1=00, " + sig, ts, body, now, nil},
		{"other secret", webhook.NewSecret(), sig, ts, body, now, webhook.ErrSignatureInvalid},
		{"modified body", secret, sig, ts, append([]byte(nil), append(body, '\n')...), now, webhook.ErrSignatureInvalid},
		{"other timestamp", secret, sig, strconv.FormatInt(now.Unix()+1, 10), body, now, webhook.ErrSignatureInvalid},
		{"replayed later", secret, sig, ts, body, now.Add(6 * time.Minute), webhook.ErrTimestampSkew},
		{"from the future", secret, sig, ts, body, now.Add(-6 * time.Minute), webhook.ErrTimestampSkew},
		{"no v1", secret, "v0=abc", ts, body, now, webhook.ErrNoSignature},
		{"bad timestamp", secret, sig, "yesterday", body, now, webhook.ErrBadTimestamp},
	} {
		if got := webhook.Verify(tc.secret, tc.sig, tc.ts, tc.body, tc.now, 0); !errors.Is(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	// A known vector, so receivers in other languages can check theirs:
	// HMAC-SHA256(key "secret", "1700000000.{}").
	if got := webhook.Sign("secret", 1700000000, []byte("{}")); got != "v1="+knownVector {
		t.Errorf("Sign vector: %s", got)
	}
}

func TestCheckURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://hooks.example.com/dzconnect":                   true,
		"https://hooks.example.com:8443/a?b=c":                  true,
		"http://127.0.0.1:8080/hook":                            true,
		"http://localhost/hook":                                 true,
		"http://[::1]:9000/":                                    true,
		"http://hooks.example.com/":                             false,
		"http://10.0.0.1/":                                      false,
		"https://user:pw@hooks.example.com/":                    false,
		"https://user@hooks.example.com/":                       false,
		"ftp://hooks.example.com/":                              false,
		"hooks.example.com/x":                                   false,
		"https:///path":                                         false,
		"https://hooks.example.com/a#frag":                      false,
		"https://hooks.example.com/a b":                         false,
		"":                                                      false,
		"https://h.example.com/" + strings.Repeat("a", 2048-22): true,
		"https://h.example.com/" + strings.Repeat("a", 2048-21): false,
	} {
		if err := webhook.CheckURL(url); (err == nil) != ok {
			t.Errorf("CheckURL(%.40q) = %v, want ok=%v", url, err, ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	minutes := []int{1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60}
	var total time.Duration
	for i, m := range minutes {
		w := time.Duration(m) * time.Minute
		if got := webhook.Backoff(i+1, 0); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
		total += w
		if got := webhook.Backoff(i+1, 0.999); got <= w || got > w*11/10 {
			t.Errorf("Backoff(%d) with jitter = %v", i+1, got)
		}
	}
	if total != 6*time.Hour+3*time.Minute {
		t.Errorf("schedule spans %v", total)
	}
}

// knownVector is printf '1700000000.{}' | openssl dgst -sha256 -hmac secret.
const knownVector = "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
