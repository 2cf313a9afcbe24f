package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// canonicalJSON returns the canonical form of a JSON value: compacted,
// object keys sorted, each string and number written one way (numbers
// keep their digits). Payloads are sent in this form, so two begins whose
// payloads say the same with keys in another order or other spacing are
// the same request: a retry is never a 409 for its key order.
//
// Rejected: keeping the caller's bytes and comparing canonical forms only
// when a repeated begin conflicts. The coordinator compares a digest of
// the bytes it stored, and the stored bytes are gone once the
// transaction is finished, so the comparison could not be made later.
func canonicalJSON(raw []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
