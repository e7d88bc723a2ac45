//! `hull ps [--format table|json] ID [PS ARGS...]`: the container's host
//! processes: its sandbox process, its VMM and whatever else is in its
//! cgroup. `json` prints their pids (as runc does); `table` runs `ps`
//! (with PS ARGS, default `-ef`) and keeps those processes' lines.

use anyhow::{bail, Context};

use crate::Global;

pub fn main(global: &Global, args: &liboci_cli::Ps) -> anyhow::Result<i32> {
    let c = super::container::load(global, &args.container_id)?;
    let pids = c.host_pids()?;
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let mut ps_args: Vec<String> = args.ps_options.clone();
            if ps_args.is_empty() {
                ps_args.push("-ef".into());
            }
            let out = std::process::Command::new("ps")
                .args(&ps_args)
                .output()
                .context("cannot run ps")?;
            if !out.status.success() {
                bail!("ps failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            print!(
                "{}",
                filter_table(&String::from_utf8_lossy(&out.stdout), &pids)?
            );
        }
        other => bail!("invalid format option {other:?}: use table or json"),
    }
    Ok(0)
}

/// The host pids that belong to the container (empty once it stopped).
fn filter_table(text: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = text.lines();
    let header = lines.next().context("ps printed nothing")?;
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps printed no PID column")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_header_and_the_container_lines() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 hull\nroot 43 42 hull-vmm\n";
        let out = super::filter_table(text, &[42, 43]).unwrap();
        assert_eq!(
            out,
            "UID PID PPID CMD\nroot 42 1 hull\nroot 43 42 hull-vmm\n"
        );
        assert!(super::filter_table("UID CMD\n", &[1]).is_err());
    }
}
