# Round-trip fixture: health and degradation off, one-line blocks.
health { enabled = false }
degradation { enabled = false }
circuit_breaker { backoff_multiplier = 1.5 }
