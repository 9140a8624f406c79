package orchestrator

import "github.com/lifeline-bot/lifeline/core/health"

var _ health.WorkerChecker = pluginCheck{}

// KeepWorker passes on the plugin check's wish for a goroutine the health
// monitor keeps for its calls (health.WorkerChecker): a plugin call goes
// through gRPC, whose call path grows a new goroutine's stack several times.
func (c pluginCheck) KeepWorker() bool { return c.check.KeepWorker() }
