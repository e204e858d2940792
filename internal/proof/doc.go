// Package proof holds the end-to-end proofs that eipclaim holds up under
// faults and races (issue 7), as tests only. Each runs the real eipclaim
// binary, one process per instance, against moto and the IMDS emulator
// (internal/testenv), through the counting, fault-injecting proxy of
// internal/faultproxy, and checks the outcome in EC2 and Route 53:
//
//   - TestClaimsUnderFaults: 30% of the requests to EC2 and IMDS faulted and
//     IMDS down for 2 s at every boot; every claim succeeds in time, and the
//     logs account for every fault that got past the SDK's retries;
//   - TestIMDSDownAtBoot, TestUserDataFaultRetried, TestRoute53FaultRetried:
//     outages longer than the SDK's own retries are retried until --timeout;
//   - TestPermissionDeniedEndsAtOnce: a denied AssociateAddress exits 3 at
//     once, after one request;
//   - TestPoolRace, TestFixedEIPRace: many claimers at once on a pool or on
//     one EIP; never two holders, the losers refused (exit 4);
//   - TestFixedEIPRaceUnderStale, TestClaimAfterReleaseUnderStale,
//     TestPoolRaceUnderStale, TestWatchTakeoverUnderStale: the races, a
//     claim right after a release and a watch takeover under EC2's
//     eventual consistency (faultproxy.Stale: reads answer the state from
//     before a mutation for up to 2 s); never two holders, no claim of a
//     free EIP refused, no spurious takeover, no epoch handed out twice.
//
// `make test` runs them at a size that fits its time; `make proof`
// (EIPCLAIM_PROOF=1) runs the long ones. docs/proof.md has the figures.
package proof
