// Package decide holds the failover decision, once: pure functions with
// no I/O that every driver and the claim engine ask. Whether an EIP's
// holder counts as down (Judge, from one list of down states: Stopped),
// whether a claim may take an EIP from its holder (Takeover), whether it
// stops a down but running holder first (Fence), which
// instances may hold a role's EIP and in what order (Eligible, Rank).
//
// Facts come in; a verdict with its reason in words comes out. Reading
// the facts (EC2, probes) is the caller's business, and so is acting:
// the engine's compare-and-swap, not a decision, guarantees one winner.
package decide
