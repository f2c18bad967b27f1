//! shipit's end-to-end tests, one binary (linked once; every test runs in one pool): each
//! module drives the real `shipit` binary against real tools and local fakes.

mod common;

mod action;
mod announce;
mod architecture;
mod cache;
mod ci_github;
mod cli;
mod config_errors;
mod cross;
mod deploy;
mod docker;
mod executor;
mod fleet;
mod generate;
mod github_fake;
mod homebrew;
mod installer;
mod keep_going;
mod keyless;
mod linux_packages;
mod nightly;
mod npm;
mod package;
mod release;
mod release_check;
mod release_notes;
mod reproduce;
mod split;
mod supply_chain;
mod systemd;
mod trust;
mod windows_channels;
