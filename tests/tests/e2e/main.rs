//! hull's end-to-end tests: they boot real microVMs (see tests/run-e2e).

mod agent;
mod boot;
mod control;
mod run;
