package main

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logConfig is the process logger's configuration.
type logConfig struct {
	level  zapcore.Level
	format string // "json" or "console"
}

// parseLogLevel accepts debug, info, warn and error.
func parseLogLevel(s string) (zapcore.Level, error) {
	lvl, err := zapcore.ParseLevel(s)
	if err != nil || lvl < zapcore.DebugLevel || lvl > zapcore.ErrorLevel {
		return 0, fmt.Errorf("%q is not a level (expected debug, info, warn or error)", s)
	}
	return lvl, nil
}

// parseLogFormat accepts json and console.
func parseLogFormat(s string) (string, error) {
	if s != "json" && s != "console" {
		return "", fmt.Errorf("%q is not a format (expected json or console)", s)
	}
	return s, nil
}

// newLogger builds the process logger: json is one object per line, for
// machines; console is for people. Field names follow the house rules:
// txid, participant, state, rev.
func newLogger(w io.Writer, c logConfig) *zap.Logger {
	var enc zapcore.Encoder
	if c.format == "json" {
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	} else {
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(cfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), c.level))
}

// quieter returns l for a chatty library (etcd): at least floor, unless
// the operator asked for debug.
func quieter(l *zap.Logger, c logConfig, floor zapcore.Level) *zap.Logger {
	if c.level == zapcore.DebugLevel {
		return l
	}
	return l.WithOptions(zap.IncreaseLevel(floor))
}
