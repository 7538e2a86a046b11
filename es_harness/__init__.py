"""What drives a whole stack from outside, through the public API, for the demo, the benchmarks
and the end-to-end tests: throwaway stacks, BEIR datasets, simulated clicks and the feedback
loop's steps."""
