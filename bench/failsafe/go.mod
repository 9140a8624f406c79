module github.com/lifeline-bot/lifeline/bench/failsafe

go 1.26.8

require github.com/failsafe-go/failsafe-go v0.9.8

require github.com/bits-and-blooms/bitset v1.24.4 // indirect
