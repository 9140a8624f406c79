package health

import (
	"math"
	"sort"
)

// verdict is one enabled check's last result as the derivations see it.
type verdict struct {
	name     string
	passed   bool
	critical bool
	weight   float64 // the configured weight, defaults applied, before the critical factor
}

// scoreOf is the weighted share of passing checks, 0-100:
//
//	w_i   = weight_i × (criticalWeight if check i is critical, else 1)
//	score = 100 × Σ_{i passed} w_i / Σ_i w_i
//
// With no verdicts it is 100: nothing is known to be failing.
func scoreOf(vs []verdict, criticalWeight float64) float64 {
	var total, passing float64
	for _, v := range vs {
		w := v.weight
		if v.critical {
			w *= criticalWeight
		}
		total += w
		if v.passed {
			passing += w
		}
	}
	if total <= 0 {
		return 100
	}
	return 100 * passing / total
}

// statusOf applies the status rules, in order:
//
//	no verdicts                   -> Unknown
//	a critical check failed       -> Critical
//	nothing failed                -> Healthy
//	score < unhealthyBelow        -> Unhealthy
//	otherwise                     -> Degraded
//
// It also returns the failing checks' names, sorted.
func statusOf(vs []verdict, score, unhealthyBelow float64) (Status, []string) {
	if len(vs) == 0 {
		return Unknown, nil
	}
	var failing []string
	critical := false
	for _, v := range vs {
		if !v.passed {
			failing = append(failing, v.name)
			critical = critical || v.critical
		}
	}
	sort.Strings(failing)
	switch {
	case critical:
		return Critical, failing
	case len(failing) == 0:
		return Healthy, nil
	case score < unhealthyBelow:
		return Unhealthy, failing
	default:
		return Degraded, failing
	}
}

// stabilityOf is 100 − 2σ, clamped to [0, 100], where σ is the population
// standard deviation of scores. Scores live in [0, 100], so σ ≤ 50 and the
// most erratic history possible (alternating 0 and 100) scores 0. Fewer
// than two scores give 100.
func stabilityOf(scores []float64) float64 {
	n := float64(len(scores))
	if n < 2 {
		return 100
	}
	var mean float64
	for _, s := range scores {
		mean += s
	}
	mean /= n
	var ss float64
	for _, s := range scores {
		ss += (s - mean) * (s - mean)
	}
	sigma := math.Sqrt(ss / n)
	return clamp(100-2*sigma, 0, 100)
}

// slopeOf is the least-squares slope of scores against their index
// (x = 0, 1, …, n−1), in score points per evaluation:
//
//	slope = Σ (x − x̄)(y − ȳ) / Σ (x − x̄)²
//
// It is 0 for fewer than two scores.
func slopeOf(scores []float64) float64 {
	n := len(scores)
	if n < 2 {
		return 0
	}
	xm := float64(n-1) / 2
	var ym float64
	for _, y := range scores {
		ym += y
	}
	ym /= float64(n)
	var num, den float64
	for i, y := range scores {
		dx := float64(i) - xm
		num += dx * (y - ym)
		den += dx * dx
	}
	return num / den
}

// trendOf turns the slope of scores into a Trend: Improving above
// +deadBand, Degrading below −deadBand, Stable in between or with fewer
// than three scores (two points always make a line, and a single change is
// not a trend).
func trendOf(scores []float64, deadBand float64) Trend {
	if len(scores) < 3 {
		return Stable
	}
	switch s := slopeOf(scores); {
	case s > deadBand:
		return Improving
	case s < -deadBand:
		return Degrading
	default:
		return Stable
	}
}

// reliabilityOf is 100 × passing runs / runs, or 100 with no runs.
func reliabilityOf(passed, runs int) float64 {
	if runs == 0 {
		return 100
	}
	return 100 * float64(passed) / float64(runs)
}

func clamp(v, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, v))
}
