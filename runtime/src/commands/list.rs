//! `hull list [--format table|json] [--quiet]`: the containers under the
//! state root, like `runc list` (same columns and alignment; `--quiet`
//! prints the ids only).

use crate::Global;
use runtime::state::owner::user_name;
use runtime::state::{OciState, StateStore};

/// Output shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// `list [--format|-f table|json] [--quiet|-q]` (runc's; liboci-cli's has
/// no `-f`).
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Args {
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: Format,
    /// Print the container ids only
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn main(global: &Global, args: &Args) -> anyhow::Result<i32> {
    print!("{}", render(&StateStore::new(&global.root), *args)?);
    Ok(0)
}

/// What `hull list` prints. Containers whose state cannot be read are
/// reported on stderr and left out, as runc does.
pub fn render(store: &StateStore, args: Args) -> anyhow::Result<String> {
    let mut states = Vec::new();
    for listed in store.list()? {
        match listed.state {
            Ok(s) => states.push(s.oci(user_name(listed.owner_uid))),
            Err(e) => eprintln!("hull: load container {}: {e}", listed.id),
        }
    }
    if args.quiet {
        return Ok(states.iter().map(|s| format!("{}\n", s.id)).collect());
    }
    Ok(match args.format {
        Format::Json => format!("{}\n", serde_json::to_string(&states)?),
        Format::Table => table(&states),
    })
}

fn table(states: &[OciState]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    tabulate(&rows)
}

/// Aligns columns the way runc's tabwriter (minimum width 12, padding 3,
/// spaces) does: every column but the last is as wide as its widest cell
/// plus 3, and at least 12.
fn tabulate<const N: usize>(rows: &[[String; N]]) -> String {
    const MIN_WIDTH: usize = 12;
    const PADDING: usize = 3;
    let width = |c: &String| c.chars().count();
    let widths: Vec<usize> = (0..N)
        .map(|col| {
            let widest = rows.iter().map(|r| width(&r[col])).max().unwrap_or(0);
            (widest + PADDING).max(MIN_WIDTH)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (col, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if col + 1 < N {
                out.push_str(&" ".repeat(widths[col] - width(cell)));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testutil::{dead_state, live_state, store_in};

    fn parse(line: &str) -> Result<Args, clap::Error> {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            args: Args,
        }
        let argv = std::iter::once("list").chain(line.split_whitespace());
        Cmd::try_parse_from(argv).map(|c| c.args)
    }

    const TABLE: Args = Args {
        format: Format::Table,
        quiet: false,
    };

    #[test]
    fn options() {
        assert_eq!(parse("").unwrap(), TABLE);
        let a = parse("-f json -q").unwrap();
        assert_eq!((a.format, a.quiet), (Format::Json, true));
        assert_eq!(parse("--format=table").unwrap(), TABLE);
        for (line, want) in [
            (
                "--format xml",
                "invalid value 'xml' for '--format <FORMAT>'",
            ),
            ("--format", "a value is required for '--format <FORMAT>'"),
            ("--all", "unexpected argument '--all'"),
            ("c1", "unexpected argument 'c1'"),
        ] {
            let e = parse(line).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
    }

    #[test]
    fn table_columns_like_runc() {
        let (_dir, store) = store_in("cmd-list");
        store.save(&live_state(&store, "web")).unwrap();
        store.save(&dead_state(&store, "a-much-longer-id")).unwrap();
        let out = render(&store, TABLE).unwrap();
        let meta = std::fs::metadata(store.dir("web").unwrap()).unwrap();
        let owner = user_name(std::os::unix::fs::MetadataExt::uid(&meta));
        let me = std::process::id();
        let created = "2024-01-02T03:04:05.123Z";
        // ID is 16+3 wide, PID the minimum 12, BUNDLE 25+3, CREATED 24+3.
        let want = format!(
            "{:19}{:12}{:12}{:28}{:27}OWNER\n\
             {:19}{:12}{:12}{:28}{created:27}{owner}\n\
             {:19}{me:<12}{:12}{:28}{created:27}{owner}\n",
            "ID",
            "PID",
            "STATUS",
            "BUNDLE",
            "CREATED",
            "a-much-longer-id",
            "0",
            "stopped",
            "/bundles/a-much-longer-id",
            "web",
            "running",
            "/bundles/web",
        );
        assert_eq!(out, want);
    }

    #[test]
    fn json_and_quiet() {
        let (_dir, store) = store_in("cmd-list-json");
        let json = Args {
            format: Format::Json,
            quiet: false,
        };
        assert_eq!(render(&store, json).unwrap(), "[]\n");
        store.save(&live_state(&store, "b")).unwrap();
        store.save(&live_state(&store, "a")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&render(&store, json).unwrap()).unwrap();
        assert_eq!(v[0]["id"], "a");
        assert_eq!(v[1]["owner"], "root");
        assert_eq!(v[1]["status"], "running");
        let quiet = Args {
            quiet: true,
            ..json
        };
        assert_eq!(render(&store, quiet).unwrap(), "a\nb\n");
    }
}
