package server

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/runtime/protoiface"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// errorDomain is the google.rpc.ErrorInfo domain of dzconnect's errors.
const errorDomain = "dzconnect.dropzone.ai"

var codeOf = map[apperr.Kind]codes.Code{
	apperr.Internal:           codes.Internal,
	apperr.InvalidArgument:    codes.InvalidArgument,
	apperr.NotFound:           codes.NotFound,
	apperr.AlreadyExists:      codes.AlreadyExists,
	apperr.FailedPrecondition: codes.FailedPrecondition,
	apperr.Aborted:            codes.Aborted,
	apperr.PermissionDenied:   codes.PermissionDenied,
	apperr.Unauthenticated:    codes.Unauthenticated,
	apperr.ResourceExhausted:  codes.ResourceExhausted,
	apperr.Unavailable:        codes.Unavailable,
	apperr.DeadlineExceeded:   codes.DeadlineExceeded,
	apperr.Canceled:           codes.Canceled,
}

// Status is the one place an error becomes a gRPC status. Classified
// errors keep their message and get ErrorInfo, RetryInfo and BadRequest
// details;
// anything else becomes a bare Internal without its text, which may hold
// details callers must not see.
func Status(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	e, ok := apperr.From(err)
	if !ok {
		if s, isStatus := err.(interface{ GRPCStatus() *status.Status }); isStatus {
			return s.GRPCStatus() // a bare status from grpc itself (not a wrapped one: its text could carry a cause)
		}
		switch {
		case errors.Is(err, context.Canceled):
			return status.New(codes.Canceled, "request canceled")
		case errors.Is(err, context.DeadlineExceeded):
			return status.New(codes.DeadlineExceeded, "deadline exceeded")
		}
		return status.New(codes.Internal, "internal error")
	}
	code := codeOf[e.Kind]
	msg := e.Message
	if code == codes.Internal {
		msg = "internal error"
	}
	s := status.New(code, msg)
	var details []protoiface.MessageV1
	if e.Reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: e.Reason, Domain: errorDomain, Metadata: e.Metadata})
	}
	if e.RetryDelay > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryDelay)})
	}
	if len(e.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range e.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		details = append(details, br)
	}
	if len(details) > 0 {
		if ws, err := s.WithDetails(details...); err == nil {
			s = ws
		}
	}
	return s
}
