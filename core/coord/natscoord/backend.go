package natscoord

import (
	"context"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/lifeline-bot/lifeline/core/coord"
)

// Kind is the coordination kind this package registers with core/coord:
// a policy's `coordination "nats"` block.
const Kind = "nats"

func init() { coord.RegisterBackend(Kind, openBackend) }

// openBackend dials NATS for a fleet member (reconnecting forever; a
// first connect that fails is retried in the background) and returns the
// Store on it; the Closer closes the connection.
func openBackend(_ context.Context, cfg coord.BackendConfig) (coord.Store, io.Closer, error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("nats")
	opts := []nats.Option{
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from NATS", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
	}
	if cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	}
	name := cfg.Name
	if name == "" {
		name = "lifeline"
	}
	nc, err := Dial(cfg.URL, name, opts...)
	if err != nil {
		return nil, nil, err
	}
	s, err := New(nc, Options{BucketPrefix: cfg.BucketPrefix, Replicas: cfg.Replicas, Memory: cfg.Memory})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return s, closer{nc}, nil
}

type closer struct{ nc *nats.Conn }

func (c closer) Close() error {
	c.nc.Close()
	return nil
}
