//! hubmock's behaviour tests, through real HTTP. One binary; shared helpers in `util`.

mod serve;
mod util;

mod browser;
mod chain;
mod cli;
mod control;
mod control_token;
mod double;
mod errors;
mod faults;
mod fuzz_receiver;
mod fuzz_replay;
mod hostile;
mod hub_api;
mod hub_read;
mod limits;
mod model;
mod pages;
mod payload;
mod persistence;
mod props;
mod push_cli;
mod quirks;
mod registry;
mod retention;
mod scenarios;
mod seed;
mod timing;
mod tls;
