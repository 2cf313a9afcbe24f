package console

import "errors"

// Errors returned by the console; test them with errors.Is.
var (
	// ErrInvalidConfig: an option is out of range; nothing was started.
	ErrInvalidConfig = errors.New("console: invalid configuration")
	// ErrClosed: the Console was closed.
	ErrClosed = errors.New("console: closed")
)
