package zapslog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestNewLogsAtDebug(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	z := New(log, zapcore.InfoLevel).Named("raft").With(zap.String("member_id", "8e9e"))
	z.Debug("below the minimum")
	z.Warn("lost leader", zap.Int("term", 3), zap.Error(errTest))
	out := buf.String()
	for _, want := range []string{"level=DEBUG", `msg="lost leader"`, "term=3", "member_id=8e9e",
		"etcd_level=warn", "etcd_name=raft", `error=boom`} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "below the minimum") {
		t.Errorf("entry below the minimum level was logged: %q", out)
	}
	New(nil, zapcore.DebugLevel).Error("dropped") // nil logger: no-op, no panic
}

var errTest = errors.New("boom")
