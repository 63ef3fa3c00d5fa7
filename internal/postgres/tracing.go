package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dropzoneai/dzconnect/internal/telemetry"
)

// tracer makes a span per statement, batch, prepare and new connection
// (docs/observability.md), as a child of the recording span in the
// statement's context and only then: River's polling and the operation
// listener, which run outside any traced call, make none. A span is named
// after the sqlc query ("-- name: GetTenant :one" opens every generated
// statement, River's included) or else the statement's first keyword, and
// records the statement text, which holds placeholders only, never its
// arguments (secrets' paths, keys' hashes). A failure records its SQLSTATE,
// not the message (it may quote a value).
type tracer struct{}

var (
	_ pgx.QueryTracer   = tracer{}
	_ pgx.BatchTracer   = tracer{}
	_ pgx.PrepareTracer = tracer{}
	_ pgx.ConnectTracer = tracer{}
)

// spanKey marks the span the tracer started, so that its end finds that
// span and not the caller's.
type spanKey struct{}

// maxStatement bounds db.statement (bytes).
const maxStatement = 4096

var dbSystem = attribute.String("db.system", "postgresql")

func start(ctx context.Context, name string, attrs ...attribute.KeyValue) context.Context {
	ctx, span := telemetry.Child(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(append(attrs, dbSystem)...))
	if !span.IsRecording() {
		return ctx
	}
	return context.WithValue(ctx, spanKey{}, span)
}

func end(ctx context.Context, err error, attrs ...attribute.KeyValue) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	span.SetAttributes(attrs...)
	if err != nil {
		telemetry.Fail(span, sqlFailure(err))
	}
	span.End()
}

// sqlFailure describes err by its class, never its text.
func sqlFailure(err error) string {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		return "SQLSTATE " + pe.Code
	case errors.Is(err, pgx.ErrNoRows):
		return "no rows"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

func statementAttrs(sql string) (string, []attribute.KeyValue) {
	name := QueryName(sql)
	stmt := sql
	if len(stmt) > maxStatement {
		stmt = stmt[:maxStatement]
	}
	return name, []attribute.KeyValue{attribute.String("db.operation.name", name), attribute.String("db.statement", stmt)}
}

func (tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if _, ok := telemetry.Parent(ctx); !ok {
		return ctx
	}
	name, attrs := statementAttrs(data.SQL)
	return start(ctx, name, attrs...)
}

func (tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	end(ctx, data.Err, attribute.Int64("db.rows_affected", data.CommandTag.RowsAffected()))
}

func (tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if _, ok := telemetry.Parent(ctx); !ok {
		return ctx
	}
	return start(ctx, "batch", attribute.Int("db.operation.batch.size", data.Batch.Len()))
}

func (tracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if span, ok := ctx.Value(spanKey{}).(trace.Span); ok {
		name, _ := statementAttrs(data.SQL)
		span.AddEvent(name)
	}
}

func (tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	end(ctx, data.Err)
}

func (tracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, data pgx.TracePrepareStartData) context.Context {
	if _, ok := telemetry.Parent(ctx); !ok {
		return ctx
	}
	name, attrs := statementAttrs(data.SQL)
	return start(ctx, "prepare "+name, attrs...)
}

func (tracer) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, data pgx.TracePrepareEndData) {
	end(ctx, data.Err)
}

func (tracer) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	if _, ok := telemetry.Parent(ctx); !ok {
		return ctx
	}
	return start(ctx, "connect", attribute.String("server.address", data.ConnConfig.Host), attribute.String("db.namespace", data.ConnConfig.Database))
}

func (tracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	end(ctx, data.Err)
}

// QueryName names a statement for its span: the sqlc query name of a
// generated statement ("-- name: GetTenant :one" → "GetTenant"), else
// its first keyword in lower case ("begin", "select"), else "sql".
func QueryName(sql string) string {
	s := strings.TrimLeft(sql, " \t\r\n")
	if rest, ok := strings.CutPrefix(s, "-- name:"); ok {
		if f := strings.Fields(rest); len(f) > 0 {
			return f[0]
		}
	}
	// Skip comments before the first keyword.
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return "sql"
			}
			s = s[i+1:]
			continue
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s, "*/")
			if i < 0 {
				return "sql"
			}
			s = s[i+2:]
			continue
		}
		break
	}
	n := 0
	for n < len(s) && (s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z') {
		n++
	}
	if n == 0 {
		return "sql"
	}
	return strings.ToLower(s[:n])
}
