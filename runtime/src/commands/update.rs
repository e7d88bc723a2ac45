//! `hull update [OPTIONS] ID`: changes the container's resource limits.

pub const USAGE: &str = "usage: hull update [--memory N] [--cpu-quota N] [--cpu-period N] [--cpu-shares N] [--pids-limit N] [-r FILE] ID";

pub fn main(_global: &crate::Global, _args: &[String]) -> anyhow::Result<i32> {
    anyhow::bail!("update: not wired yet")
}
