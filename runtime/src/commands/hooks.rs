//! The spec's hooks at the steps the commands own (placeholder until the
//! host::hooks module lands).

use super::container::Container;
use crate::Global;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    StartContainer,
    Poststart,
    Poststop,
}

pub fn run(_c: &Container, _kind: Kind) -> anyhow::Result<()> {
    Ok(())
}

pub fn run_warn(_global: &Global, _c: &Container, _kind: Kind) {}
