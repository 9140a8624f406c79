package pluginhost

import "google.golang.org/grpc"

// The host's side of a plugin call costs little next to the traffic it
// causes: each call wakes the plugin process and then the host again, and on
// a small machine running the bot and several plugins the CPU those
// wake-ups take is what limits a tick of plugin checks (they run in
// parallel, but the machine's cores are shared by every process).

// dialOptions are the gRPC options of the host's connection to a plugin.
//
// A fixed flow-control window turns off the client's bandwidth-delay
// estimator, which otherwise follows nearly every response with a PING that
// the plugin must read and acknowledge: more writes and wake-ups of both
// processes per call (strace: 4.3 writes per call in both processes
// together, 3.5 without it) for a figure that only matters for bulk
// transfers. The window (1 MiB)
// is far above any message of the plugin protocol, so flow control never
// holds a call back.
var dialOptions = []grpc.DialOption{
	grpc.WithInitialWindowSize(pluginWindow),
	grpc.WithInitialConnWindowSize(pluginWindow),
}

const pluginWindow = 1 << 20
