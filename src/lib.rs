//! shipit: one binary that takes a Rust project from source to production.
//!
//! Data flows one way: pipeline file ([`config`]) -> validated [`plan`] -> [`executor`] ->
//! [`manifest`] -> publishers and deployers. Each arrow is a plain data type.

pub mod archive;
pub mod audit;
pub mod binfmt;
pub mod cache;
pub mod checksum;
pub mod child;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cosign;
pub mod dag;
pub mod deploy;
pub mod env_vars;
pub mod error;
pub mod events;
pub mod executor;
pub mod exit;
pub mod facts;
pub mod file_error;
pub mod generate;
pub mod github_urls;
pub mod http;
pub mod installer;
pub mod invalid;
pub mod lipo;
pub mod manifest;
pub mod merge;
pub mod minisign;
pub mod oci;
pub mod openpgp;
pub mod package;
pub mod plan;
pub mod provenance;
pub mod publish;
pub mod quote;
pub mod release_notes;
pub mod relpath;
pub mod remap;
pub mod report;
pub mod reproduce;
pub mod reproducible;
pub mod retry;
pub mod sbom;
pub mod secrets;
pub mod sigstore;
pub mod targets;
pub mod tasks;
pub mod template;
pub mod toolchain;
pub mod ui;
pub mod verify;
pub mod words;
pub mod workflow;

pub use error::Error;
pub use exit::ExitCode;
