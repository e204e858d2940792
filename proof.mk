# proof.mk: the proof of issue 7 — fault injection, races at scale, and the
# benchmark against the aws CLI script. Included by the Makefile; see
# docs/proof.md for what each target shows and the numbers measured.

.PHONY: bench proof vulndb

PROOF_TESTS = TestClaimsUnderFaults|TestClaimsUnderFaultsAndStale|TestIMDSDownAtBoot|TestUserDataFaultRetried|TestRoute53FaultRetried|TestPermissionDeniedEndsAtOnce|TestPoolRace|TestFixedEIPRace|TestWatchHealthyHolderUnderFaults|TestFixedEIPRaceUnderStale|TestClaimAfterReleaseUnderStale|TestPoolRaceUnderStale|TestWatchTakeoverUnderStale|TestWatchHolderStaleReadsUnderStale|TestLambdaHolderStoppedUnderStale

## bench: time eipclaim against its targets and against the aws CLI script, then the 200-claimer boot storm against AWS's rate limits (tools/bench/), PASS/MISS per target
bench: tools
	go run ./tools/bench

## proof: the long fault and race runs: 1000 faulted claims, 20 rounds of 50 claimers on a pool of 10, 50 fixed-EIP races; the races, claims after release, watch takeovers and the controller under EC2's eventual consistency (the stale-read mode)
proof: tools
	EIPCLAIM_PROOF=1 go test -count=1 -timeout 60m -v -run '^($(PROOF_TESTS))$$' ./internal/proof/ ./internal/controller/
	FUZZALL=1 FUZZTIME=30s bash scripts/test.sh fuzz

## vulndb: a local copy of the Go vulnerability database in .tools/vulndb (GOVULNDB=file://$$PWD/.tools/vulndb)
vulndb:
	bash scripts/vulndb.sh
