package protocol

import (
	"encoding/base64"
	"strconv"
	"time"
)

// The stored encoding is JSON, and stays so: participants in any language
// read it with their own JSON library. Records and messages are encoded
// and decoded on every step of every transaction, though, and reflection
// made encoding/json a tenth of a coordinator's CPU. So the common shape
// takes a fast path, written by hand: the encoder writes the same bytes
// encoding/json writes, and the decoder reads what encoding/json reads to
// the same result. Anything the fast path does not know for certain (an
// escape in a string, a key in other case, an unknown key, null, a
// fraction) makes it give up, and encoding/json does the work: it stays
// the definition, and the tests check the fast path against it.

// appendRecordJSON appends r as encoding/json encodes it, with the version
// field first when v > 0; false: r holds something only encoding/json
// writes right (a string to escape, a year past 9999) or refuses (a state
// out of range).
func appendRecordJSON(b []byte, r Record, v int) ([]byte, bool) {
	ok := r.State.Valid() // State's MarshalText refuses the others
	b = append(b, '{')
	if v > 0 {
		b = append(b, `"v":`...)
		b = strconv.AppendInt(b, int64(v), 10)
		b = append(b, ',')
	}
	b = append(b, `"id":`...)
	b, ok = appendString(b, r.ID, ok)
	b = append(b, `,"state":"`...)
	b = append(b, r.State.String()...)
	b = append(b, `","participants":`...)
	if r.Participants == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range r.Participants {
			if i > 0 {
				b = append(b, ',')
			}
			b, ok = appendString(b, p, ok)
		}
		b = append(b, ']')
	}
	b = append(b, `,"created":`...)
	b, ok = appendTime(b, r.Created, ok)
	b = append(b, `,"deadline":`...)
	b, ok = appendTime(b, r.Deadline, ok)
	if !r.Decided.IsZero() {
		b = append(b, `,"decided":`...)
		b, ok = appendTime(b, r.Decided, ok)
	}
	if !r.Finished.IsZero() {
		b = append(b, `,"finished":`...)
		b, ok = appendTime(b, r.Finished, ok)
	}
	if r.Cause != "" {
		b = append(b, `,"cause":`...)
		b, ok = appendString(b, string(r.Cause), ok)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b, ok = appendString(b, r.Reason, ok)
	}
	b = append(b, `,"digest":`...)
	b, ok = appendString(b, r.Digest, ok)
	if r.Trace != (TraceContext{}) {
		b = append(b, `,"trace":{`...)
		if r.Trace.Parent != "" {
			b = append(b, `"traceparent":`...)
			b, ok = appendString(b, r.Trace.Parent, ok)
		}
		if r.Trace.State != "" {
			if r.Trace.Parent != "" {
				b = append(b, ',')
			}
			b = append(b, `"tracestate":`...)
			b, ok = appendString(b, r.Trace.State, ok)
		}
		b = append(b, '}')
	}
	return append(b, '}'), ok
}

// appendMessageJSON appends m as encoding/json encodes its envelope.
func appendMessageJSON(b []byte, m Message) ([]byte, bool) {
	ok := true
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, EncodingVersion, 10)
	b = append(b, `,"op":`...)
	b, ok = appendString(b, string(m.Op), ok)
	b = append(b, `,"record":`...)
	b, recOK := appendRecordJSON(b, m.Record, 0)
	ok = ok && recOK
	if len(m.Payload) > 0 {
		b = append(b, `,"payload":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.Payload)
		b = append(b, '"')
	}
	if m.Begun != 0 {
		b = append(b, `,"begun":`...)
		b = strconv.AppendInt(b, m.Begun, 10)
	}
	return append(b, '}'), ok
}

// appendString appends s quoted, if encoding/json would write it with no
// escape: printable ASCII other than the quote, the backslash and the
// three characters it escapes for HTML (<, >, &).
func appendString(b []byte, s string, ok bool) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			ok = false
			break
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), ok
}

func plain(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendTime appends t as time.Time's MarshalJSON does, which refuses a
// year past 9999 or before 0, and a zone offset of 24 hours or more.
func appendTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	switch {
	case b[n0+len("9999")] != '-':
		ok = false
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		if '0' <= c && c <= '9' || 10*(b[len(b)-5]-'0')+(b[len(b)-4]-'0') >= 24 {
			ok = false
		}
	}
	return append(b, '"'), ok
}

// scanner reads the JSON of one record or message. Its methods report
// false for anything but the plain shape described above; the caller
// then leaves the input to encoding/json.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// raw returns a string with no escape, quotes included.
func (s *scanner) raw() ([]byte, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			r := s.b[s.i : j+1]
			s.i = j + 1
			return r, true
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return nil, false
		}
	}
	return nil, false
}

func (s *scanner) string() (string, bool) {
	r, ok := s.raw()
	if !ok {
		return "", false
	}
	return string(r[1 : len(r)-1]), true
}

func (s *scanner) int() (int64, bool) {
	s.space()
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	start := j
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	if j == start || j-start > 1 && s.b[start] == '0' || j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[s.i:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	s.i = j
	return n, true
}

func (s *scanner) time(t *time.Time) bool {
	r, ok := s.raw()
	return ok && t.UnmarshalJSON(r) == nil
}

func (s *scanner) strings() ([]string, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := []string{}
	if s.byte(']') {
		return out, true
	}
	for {
		v, ok := s.string()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// object reads an object, calling field for each key; field reads the
// value and reports whether it could.
func (s *scanner) object(field func(key string) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		k, ok := s.raw()
		if !ok || !s.byte(':') || !field(string(k[1:len(k)-1])) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// recordField reads the value of one of Record's keys into r.
func (s *scanner) recordField(r *Record, key string) bool {
	var ok bool
	switch key {
	case "id":
		r.ID, ok = s.string()
	case "state":
		var v string
		if v, ok = s.string(); ok {
			ok = r.State.UnmarshalText([]byte(v)) == nil
		}
	case "participants":
		r.Participants, ok = s.strings()
	case "created":
		ok = s.time(&r.Created)
	case "deadline":
		ok = s.time(&r.Deadline)
	case "decided":
		ok = s.time(&r.Decided)
	case "finished":
		ok = s.time(&r.Finished)
	case "cause":
		var v string
		v, ok = s.string()
		r.Cause = Cause(v)
	case "reason":
		r.Reason, ok = s.string()
	case "digest":
		r.Digest, ok = s.string()
	case "trace":
		// Its own lenient reading applies to any shape; the fast path
		// knows only strings.
		r.Trace = TraceContext{}
		ok = s.object(func(k string) bool {
			var v string
			var ok bool
			switch k {
			case TraceParentKey:
				v, ok = s.string()
				r.Trace.Parent = v
			case TraceStateKey:
				v, ok = s.string()
				r.Trace.State = v
			}
			return ok
		})
	}
	return ok
}

// decodeRecordFast reads a record envelope; false: leave it to
// encoding/json.
func decodeRecordFast(b []byte) (recordEnvelope, bool) {
	var e recordEnvelope
	s := scanner{b: b}
	ok := s.object(func(key string) bool {
		if key == "v" {
			n, ok := s.int()
			e.V = int(n)
			return ok && n == int64(e.V)
		}
		return s.recordField(&e.Record, key)
	}) && s.end()
	return e, ok
}

// decodeMessageFast reads a message envelope; false: leave it to
// encoding/json.
func decodeMessageFast(b []byte) (messageEnvelope, bool) {
	var e messageEnvelope
	s := scanner{b: b}
	ok := s.object(func(key string) bool {
		switch key {
		case "v":
			n, ok := s.int()
			e.V = int(n)
			return ok && n == int64(e.V)
		case "op":
			v, ok := s.string()
			e.Op = Op(v)
			return ok
		case "record":
			return s.object(func(key string) bool { return s.recordField(&e.Record, key) })
		case "payload":
			r, ok := s.raw()
			if !ok {
				return false
			}
			enc := r[1 : len(r)-1]
			p := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
			n, err := base64.StdEncoding.Decode(p, enc)
			e.Payload = p[:n]
			return err == nil
		case "begun":
			n, ok := s.int()
			e.Begun = n
			return ok
		}
		return false
	}) && s.end()
	return e, ok
}
