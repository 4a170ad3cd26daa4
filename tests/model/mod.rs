//! The chain rules as a state machine: a small reference model of R1–R11
//! ([`reference`]) drives the real emulator over HTTP ([`sut`]); after every transition the two
//! must agree, and the emulator's runs must keep the chain's invariants.
//!
//! `PROPTEST_CASES=2000 cargo test --test integration model::` runs a longer search.

mod reference;
mod sut;

use proptest::test_runner::Config;
use proptest_state_machine::prop_state_machine;
use sut::ChainTest;

/// Cases per run: small by default so `cargo test` stays fast; `PROPTEST_CASES` raises it.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(24);
    Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel("proptest-regressions"),
        )),
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn the_emulator_follows_the_chain_rules(sequential 1..30 => ChainTest);
}
