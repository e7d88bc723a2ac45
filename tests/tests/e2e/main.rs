//! hull's end-to-end tests: they boot real microVMs (see tests/run-e2e).

mod agent;
mod boot;
mod cli;
mod control;
mod network;
mod pod;
mod run;
mod spec;
