package zapslog

import (
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a zap logger (what etcd's client and server take) that
// forwards entries at or above minLevel to log at DEBUG: etcd's own chatter
// (retries, elections, compactions) is diagnostic; Regent logs the outcomes
// that matter itself. A nil log gives a no-op logger.
func New(log *slog.Logger, minLevel zapcore.Level) *zap.Logger {
	if log == nil {
		return zap.NewNop()
	}
	return zap.New(&slogCore{log: log, minLevel: minLevel})
}

type slogCore struct {
	log      *slog.Logger
	minLevel zapcore.Level
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.minLevel }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log.With(attrs(fields)...), minLevel: c.minLevel}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	args := append(attrs(fields), slog.String("etcd_level", e.Level.String()))
	if e.LoggerName != "" {
		args = append(args, slog.String("etcd_name", e.LoggerName))
	}
	c.log.Debug(e.Message, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// attrs converts zap fields to slog attributes through zap's map encoder.
func attrs(fields []zapcore.Field) []any {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]any, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		out = append(out, slog.Any(k, v))
	}
	return out
}
