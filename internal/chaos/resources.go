package chaos

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// goroutineDump returns every goroutine's stack, as a panic would print
// them.
func goroutineDump() string {
	var b bytes.Buffer
	if p := pprof.Lookup("goroutine"); p != nil {
		_ = p.WriteTo(&b, 2)
	}
	return b.String()
}

// openFDs counts this process's open file descriptors (-1 where /proc is
// missing).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// fdTargets returns what each of this process's open file descriptors
// refers to ("3 -> socket:[123]"), for a failure report; nil where /proc
// is missing.
func fdTargets() map[string]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // closed since ReadDir (ReadDir's own descriptor among them)
		}
		out[e.Name()] = target
	}
	return out
}

// newFDs describes the descriptors open in after that were not open (to
// the same target) in before; a TCP socket's addresses and state are
// added when /proc/self/net knows its inode.
func newFDs(before, after map[string]string) []string {
	var out []string
	for fd, target := range after {
		if before[fd] != target {
			desc := fd + " -> " + target
			if inode, ok := strings.CutPrefix(target, "socket:["); ok {
				inode = strings.TrimSuffix(inode, "]")
				if conn := tcpSocket(inode); conn != "" {
					desc += " (" + conn + ")"
				} else if conn := unixSocket(inode); conn != "" {
					desc += " (" + conn + ")"
				} else if conn := describeSocket(fd); conn != "" {
					desc += " (" + conn + ")"
				}
			}
			out = append(out, desc)
		}
	}
	sort.Strings(out)
	return out
}

// tcpStates names /proc/net/tcp's st column.
var tcpStates = map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
	"05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}

// tcpSocket describes the IPv4 or IPv6 TCP socket with the given inode
// ("tcp 127.0.0.1:41234 -> 127.0.0.1:80 ESTABLISHED"), or "".
func tcpSocket(inode string) string {
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile("/proc/self/net/" + table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[9] != inode {
				continue
			}
			return fmt.Sprintf("%s %s -> %s %s", table, procAddr(f[1]), procAddr(f[2]), tcpStates[f[3]])
		}
	}
	return ""
}

// unixSocket describes the Unix socket with the given inode ("unix
// stream /tmp/plugin123 listening", "unix stream connected"), or "".
func unixSocket(inode string) string {
	b, err := os.ReadFile("/proc/self/net/unix")
	if err != nil {
		return ""
	}
	// Num RefCount Protocol Flags Type St Inode [Path]
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 7 || f[6] != inode {
			continue
		}
		typ := map[string]string{"0001": "stream", "0002": "dgram", "0005": "seqpacket"}[f[4]]
		st := map[string]string{"01": "unconnected", "02": "connecting", "03": "connected", "04": "disconnecting"}[f[5]]
		if f[3] == "00010000" {
			st = "listening"
		}
		out := "unix " + typ
		if len(f) > 7 {
			out += " " + f[7]
		}
		return out + " " + st
	}
	return ""
}

// procAddr decodes /proc/net/tcp's "0100007F:1F90" (IPv4, little-endian
// words) or its 32-digit IPv6 form into "127.0.0.1:8080".
func procAddr(s string) string {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return s
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return s
	}
	raw, err := hex.DecodeString(host)
	if err != nil || len(raw)%4 != 0 {
		return s
	}
	// Each 32-bit word is in host (little-endian) order.
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(p, 10))
}

// heapSample is the live heap at one moment, split by who allocated it.
type heapSample struct {
	At time.Duration // since the start of the run
	// System is the bytes in use allocated outside the fake Discord and
	// this harness: lifeline, discordgo, the plugin host, the runtime.
	System int64
	// Harness is the bytes the fake Discord (its ledger keeps every frame
	// by design) and the harness (its own bookkeeping) hold.
	Harness    int64
	Goroutines int
}

// heapProfiler attributes the heap in use to its allocation sites, so the
// memory check can follow lifeline's part alone: the fake Discord's ledger
// grows with the traffic on purpose and would hide a leak, or fake one.
type heapProfiler struct {
	mu    sync.Mutex
	owner map[uintptr]bool // PC -> the frame belongs to the harness side
	recs  []runtime.MemProfileRecord
}

// harnessFrame reports whether a function belongs to the fake Discord or
// to this package.
func harnessFrame(fn string) bool {
	return strings.Contains(fn, "/discordtest.") || strings.Contains(fn, "/internal/chaos.")
}

// sampleSites runs a garbage collection and reads the heap profile (its
// precision follows runtime.MemProfileRate, which the chaos tests lower):
// the bytes in use on each side and, when sites is set, lifeline's side by
// allocation site, the first function of each stack outside the runtime
// and the standard library's containers.
func (h *heapProfiler) sampleSites(sites bool) (system, harness int64, bySite map[string]int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owner == nil {
		h.owner = map[uintptr]bool{}
	}
	runtime.GC()
	n, _ := runtime.MemProfile(nil, true)
	for {
		if cap(h.recs) < n+64 {
			h.recs = make([]runtime.MemProfileRecord, n+64)
		}
		var ok bool
		n, ok = runtime.MemProfile(h.recs[:cap(h.recs)], true)
		if ok {
			break
		}
	}
	rate := int64(runtime.MemProfileRate)
	for _, r := range h.recs[:n] {
		bytes := scaleHeap(r.InUseObjects(), r.InUseBytes(), rate)
		if bytes == 0 {
			continue
		}
		if h.isHarness(r.Stack()) {
			harness += bytes
		} else {
			system += bytes
			if sites {
				if bySite == nil {
					bySite = map[string]int64{}
				}
				bySite[siteOf(r.Stack())] += bytes
			}
		}
	}
	return system, harness, bySite
}

// siteOf names an allocation by the first frame of its stack that is not
// the runtime's or a standard container's.
func siteOf(stk []uintptr) string {
	frames := runtime.CallersFrames(stk)
	for {
		f, more := frames.Next()
		fn := f.Function
		switch {
		case strings.HasPrefix(fn, "runtime."), strings.HasPrefix(fn, "internal/"), strings.HasPrefix(fn, "reflect."),
			strings.HasPrefix(fn, "strings."), strings.HasPrefix(fn, "bytes."), strings.HasPrefix(fn, "encoding/json."),
			strings.HasPrefix(fn, "sync."), strings.HasPrefix(fn, "fmt."), strings.HasPrefix(fn, "slices."), strings.HasPrefix(fn, "maps."):
		default:
			if fn != "" {
				return fn
			}
		}
		if !more {
			return "(runtime)"
		}
	}
}

// siteGrowth lists the allocation sites whose bytes in use grew the most
// from first to last, largest first, at most n of them.
func siteGrowth(first, last map[string]int64, n int) []string {
	type g struct {
		site string
		d    int64
	}
	var gs []g
	for site, b := range last {
		if d := b - first[site]; d > 0 {
			gs = append(gs, g{site, d})
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].d > gs[j].d })
	var out []string
	for i := 0; i < len(gs) && i < n; i++ {
		out = append(out, fmt.Sprintf("%s +%.2f MB (%.2f MB in use)", gs[i].site, float64(gs[i].d)/mb, float64(last[gs[i].site])/mb))
	}
	return out
}

func (h *heapProfiler) isHarness(stk []uintptr) bool {
	for _, pc := range stk {
		v, ok := h.owner[pc]
		if !ok {
			fn := runtime.FuncForPC(pc - 1)
			v = fn != nil && harnessFrame(fn.Name())
			h.owner[pc] = v
		}
		if v {
			return true
		}
	}
	return false
}

// scaleHeap undoes the heap profile's sampling, as pprof does: a sampled
// allocation of average size s stands for 1/(1-exp(-s/rate)) of them.
func scaleHeap(count, size, rate int64) int64 {
	if count <= 0 || size <= 0 {
		return 0
	}
	if rate <= 1 {
		return size
	}
	avg := float64(size) / float64(count)
	scale := 1 / (1 - math.Exp(-avg/float64(rate)))
	return int64(float64(size) * scale)
}

// HeapFigures summarise the heap samples of the chaos phase.
type HeapFigures struct {
	Samples int `json:"samples"`
	// FirstMB and LastMB are the medians of the first and the last third
	// of the samples taken after the warm-up, lifeline's side only.
	FirstMB float64 `json:"first_mb"`
	LastMB  float64 `json:"last_mb"`
	// MaxMB is the largest sample, lifeline's side only.
	MaxMB float64 `json:"max_mb"`
	// HarnessLastMB is what the fake Discord and the harness held at the
	// end (the ledger keeps every frame).
	HarnessLastMB float64 `json:"harness_last_mb"`
	// GoroutinesFirst and GoroutinesLast are the medians of the same
	// thirds; GoroutinesMax the largest count.
	GoroutinesFirst int `json:"goroutines_first"`
	GoroutinesLast  int `json:"goroutines_last"`
	GoroutinesMax   int `json:"goroutines_max"`
	// SeriesMB is every sample after the warm-up, lifeline's side, in MB;
	// Goroutines the goroutine count of each.
	SeriesMB   []float64 `json:"series_mb"`
	Goroutines []int     `json:"goroutines"`
	// Growth lists the allocation sites of lifeline's side whose bytes in
	// use grew the most between the first sample after the warm-up and
	// the last.
	Growth []string `json:"growth,omitempty"`
}

const mb = 1 << 20

// summariseHeap computes the figures over the samples taken after warmup.
func summariseHeap(all []heapSample, warmup time.Duration) HeapFigures {
	var s []heapSample
	for _, x := range all {
		if x.At >= warmup {
			s = append(s, x)
		}
	}
	f := HeapFigures{Samples: len(s)}
	if len(s) == 0 {
		return f
	}
	third := max(1, len(s)/3)
	med := func(xs []heapSample, get func(heapSample) float64) float64 {
		v := make([]float64, len(xs))
		for i, x := range xs {
			v[i] = get(x)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	sys := func(x heapSample) float64 { return float64(x.System) / mb }
	gor := func(x heapSample) float64 { return float64(x.Goroutines) }
	f.FirstMB, f.LastMB = med(s[:third], sys), med(s[len(s)-third:], sys)
	f.GoroutinesFirst, f.GoroutinesLast = int(med(s[:third], gor)), int(med(s[len(s)-third:], gor))
	for _, x := range s {
		f.SeriesMB = append(f.SeriesMB, math.Round(sys(x)*100)/100)
		f.Goroutines = append(f.Goroutines, x.Goroutines)
		f.MaxMB = math.Max(f.MaxMB, sys(x))
		f.GoroutinesMax = max(f.GoroutinesMax, x.Goroutines)
	}
	f.HarnessLastMB = float64(s[len(s)-1].Harness) / mb
	return f
}

// flat reports whether the heap and the goroutine count stayed flat: the
// last third's median within 50% plus slackMB of the first third's, and the
// goroutines' within 50% plus 20.
func (f HeapFigures) flat(slackMB float64) bool {
	if f.Samples < 3 {
		return true
	}
	return f.LastMB <= 1.5*f.FirstMB+slackMB && f.GoroutinesLast <= f.GoroutinesFirst*3/2+20
}
