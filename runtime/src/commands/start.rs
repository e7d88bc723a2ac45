//! `hull start ID`: runs the program of a created container.

use crate::Global;

pub fn main(global: &Global, args: &liboci_cli::Start) -> anyhow::Result<i32> {
    let mut c = super::container::load(global, &args.container_id)?;
    for warning in c.start()? {
        global.warn(&warning);
    }
    Ok(0)
}
