//! hubmock's behaviour tests, through real HTTP. One binary; shared helpers in `util`.

mod util;

mod chain;
mod hub_api;
mod control;
mod errors;
mod payload;
mod cli;
mod timing;
