package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dropzoneai/dzconnect/internal/auth"
)

// TestLogCallBoundsErrors: whatever an error quotes (a caller's input, a
// receiver's or Microsoft's answer) reaches the log cut to maxLoggedError
// bytes, on a rune boundary, with the cut marked (issue 11 item 12j).
func TestLogCallBoundsErrors(t *testing.T) {
	for _, code := range []codes.Code{codes.InvalidArgument, codes.Internal} {
		var buf bytes.Buffer
		s := &Server{log: slog.New(slog.NewJSONHandler(&buf, nil))}
		long := "bad name " + strings.Repeat("é", 300<<10)
		err := errors.New(long)
		s.logCall(context.Background(), "/x.Y/Z", "id", auth.Principal{}, status.New(code, long), err, time.Millisecond)
		if buf.Len() > 2*maxLoggedError+300 {
			t.Errorf("%v: log line of %d bytes", code, buf.Len())
		}
		if !strings.Contains(buf.String(), "bytes cut") || !utf8.Valid(buf.Bytes()) {
			t.Errorf("%v: cut not marked or not on a rune boundary: %.200s", code, buf.String())
		}
	}
	if got := truncate("short", maxLoggedError); got != "short" {
		t.Errorf("short text changed: %q", got)
	}
}
