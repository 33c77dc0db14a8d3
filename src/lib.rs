//! The `wiper` package as a library: the subcommands of the `wiper` command
//! line, shared by its binaries (`wiper` and the benchmark runner
//! `wiper-bench`).

pub mod check;
pub mod commands;
pub mod info;
