package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// apiError is an answer other than success: a status and what to say.
type apiError struct {
	status int
	body   ErrorBody
}

func (e *apiError) Error() string { return e.body.Error }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, body: ErrorBody{Error: fmt.Sprintf(format, args...)}}
}

// errorOf maps an error of the coordinator to an answer, with errors.Is on
// its sentinels. Anything else is etcd failing or timing out: 503 or 504.
func errorOf(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	status := http.StatusServiceUnavailable
	msg := err.Error()
	switch {
	case errors.Is(err, coordinator.ErrInvalidRequest):
		status = http.StatusBadRequest
		msg = strings.TrimPrefix(msg, coordinator.ErrInvalidRequest.Error()+": ")
	case errors.Is(err, coordinator.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, coordinator.ErrConflict), errors.Is(err, coordinator.ErrAlreadyCommitted):
		status = http.StatusConflict
	case errors.Is(err, coordinator.ErrLimit):
		var le *coordinator.LimitError
		limit := ""
		if errors.As(err, &le) {
			limit = le.Limit
		}
		return &apiError{status: http.StatusTooManyRequests, body: ErrorBody{Error: msg, Limit: limit}}
	case errors.Is(err, coordinator.ErrNoSpace) || isNoSpace(err):
		status = http.StatusInsufficientStorage
		msg = "etcd is out of space (its NOSPACE alarm is raised: " + msg + "); nothing was written. " + NoSpaceRemedy
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
		msg = "etcd did not answer in time: " + msg
	case errors.Is(err, protocol.ErrMalformed), errors.Is(err, protocol.ErrUnsupportedVersion):
		status = http.StatusInternalServerError
	}
	return &apiError{status: status, body: ErrorBody{Error: msg}}
}

// NoSpaceRemedy says how to bring etcd back after its NOSPACE alarm.
const NoSpaceRemedy = "To recover: compact etcd's history (etcdctl compact <its current revision>), defragment it (etcdctl defrag), " +
	"then disarm the alarm (etcdctl alarm disarm); to keep less, lower coord serve's --retention or raise etcd's --quota-backend-bytes. See the README, \"etcd out of space\"."

// isNoSpace reports whether err is etcd refusing a write because its
// database reached its quota (the NOSPACE alarm).
func isNoSpace(err error) bool {
	return errors.Is(err, rpctypes.ErrNoSpace) || errors.Is(err, rpctypes.ErrGRPCNoSpace) ||
		strings.Contains(err.Error(), rpctypes.ErrNoSpace.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// fail writes an error answer.
// fail writes e. A 429, whichever limit it names, asks the caller to try
// again a second later.
func fail(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.status, e.body)
}

// decodeStrict decodes one JSON value from data into v, refusing unknown
// fields and trailing data. field prefixes the names in its errors
// ("body", "branches[2]").
func decodeStrict(data []byte, v any, field string) *apiError {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if err == nil {
		if _, err := d.Token(); err != io.EOF {
			return badRequest("%s: unexpected data after the JSON object", field)
		}
		return nil
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return badRequest("%s: invalid JSON at byte %d: %v", field, syntax.Offset, err)
	case errors.As(err, &typ):
		name := field
		if typ.Field != "" {
			name += "." + typ.Field
		}
		return badRequest("%s: expected %s, got %s", name, jsonKind(typ.Type), typ.Value)
	case errors.Is(err, io.EOF):
		return badRequest("%s: empty, expected a JSON object", field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("%s: truncated JSON", field)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badRequest("%s: unknown field %s (expected %s)", field, f, fieldNames(v))
	}
	return badRequest("%s: %v", field, err)
}

// readBody reads the whole body, answering 413 past the limit.
func readBody(r *http.Request) ([]byte, *apiError) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, body: ErrorBody{Error: fmt.Sprintf("body: larger than %d bytes", tooBig.Limit)}}
		}
		return nil, badRequest("body: %v", err)
	}
	return b, nil
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "true or false"
	default:
		return "a number"
	}
}

// fieldNames lists the JSON names of struct v's fields.
func fieldNames(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

// maxQuoted is how many characters of a bad value an error message shows.
const maxQuoted = 64

// quoteCut quotes s for an error message (characters, escaped as Go
// would), cut after maxQuoted characters with the full length in bytes:
// a 10 KB bad value is not echoed back whole.
func quoteCut(s string) string {
	head, whole := headOf(s)
	if whole {
		return strconv.Quote(s)
	}
	return strconv.Quote(head) + fmt.Sprintf("… (%d bytes)", len(s))
}

// cut is s, or its first maxQuoted characters and its length.
func cut(s string) string {
	head, whole := headOf(s)
	if whole {
		return s
	}
	return head + fmt.Sprintf("… (%d bytes)", len(s))
}

// headOf returns the first maxQuoted characters of s, and whether that is
// all of s.
func headOf(s string) (string, bool) {
	n := 0
	for i := range s {
		if n == maxQuoted {
			return s[:i], false
		}
		n++
	}
	return s, true
}
