package jobs

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// Retry policy, one for every kind that retries (webhook deliveries keep
// their own published schedule, see internal/webhook): the class of the
// error decides whether a job is retried at all, and the attempt how long
// River waits.
//
//   - transient (apperr Unavailable, DeadlineExceeded, Aborted,
//     ResourceExhausted, Canceled, Internal and unclassified errors):
//     returned as is; River retries after Backoff(attempt);
//   - permanent (InvalidArgument, FailedPrecondition, PermissionDenied,
//     Unauthenticated, AlreadyExists): the job is cancelled, a retry could
//     not succeed;
//   - NotFound: the job's subject is gone; it completes.
//
// River's NextRetry does not see the error, so the class is applied where
// the error is returned (Classify), and NextRetry (Backoff) only paces the
// retries that remain.

// Retry schedule of the transient class.
const (
	RetryBase = 15 * time.Second
	RetryMax  = time.Hour
)

// Backoff returns the delay before attempt+1 after attempt failed
// (attempt 1, 2, ...): RetryBase doubling, capped at RetryMax, plus up to
// 20% jitter so that jobs failed together do not retry together.
func Backoff(attempt int) time.Duration {
	d := RetryMax
	if attempt >= 1 && attempt < 20 {
		d = min(RetryBase<<(attempt-1), RetryMax)
	}
	return d + rand.N(d/5+1)
}

// nextRetry is the NextRetry of every kind using the shared policy.
func nextRetry(attempt int) time.Time { return time.Now().Add(Backoff(attempt)) }

// Classify turns a job's error into what River should do with it (see the
// policy above).
func Classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	switch apperr.KindOf(err) {
	case apperr.NotFound:
		return nil
	case apperr.InvalidArgument, apperr.FailedPrecondition, apperr.PermissionDenied, apperr.Unauthenticated, apperr.AlreadyExists:
		return river.JobCancel(err)
	}
	return err
}
