//! `hull spec [--bundle DIR]`: writes a default `config.json` like
//! `runc spec` does (`sh` on a terminal, runc's default capabilities,
//! mounts, masked and read-only paths and namespaces), refusing to replace
//! an existing one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::Value;

use runtime::bundle::default_spec::default_spec;
use runtime::bundle::CONFIG_FILE;

/// The bundle directory (default: the current one).
pub fn bundle_dir(args: &liboci_cli::Spec) -> anyhow::Result<PathBuf> {
    if args.rootless {
        bail!("--rootless is not supported: hull runs containers in a VM, as root");
    }
    Ok(args.bundle.clone().unwrap_or_else(|| PathBuf::from(".")))
}

pub fn main(args: &liboci_cli::Spec) -> anyhow::Result<i32> {
    write(&bundle_dir(args)?)?;
    Ok(0)
}

/// Writes `bundle/config.json`, never over an existing file.
pub fn write(bundle: &Path) -> anyhow::Result<()> {
    let path = bundle.join(CONFIG_FILE);
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        // runc's wording, with the name as runc shows it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            bail!("File {CONFIG_FILE} exists. Remove it first")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(&to_tab_indented(&default_spec())?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// runc indents its spec with tabs.
fn to_tab_indented(value: &Value) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testutil::TempDir;
    use runtime::bundle::default_spec::DEFAULT_CAPABILITIES;
    use serde_json::json;

    #[test]
    fn writes_a_spec_hull_can_load() {
        let dir = TempDir::new("cmd-spec");
        write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        assert!(text.starts_with("{\n\t\""), "not tab-indented");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["process"]["args"], json!(["sh"]));
        assert_eq!(v["process"]["terminal"], true);
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            json!(DEFAULT_CAPABILITIES)
        );
        assert_eq!(v["mounts"].as_array().unwrap().len(), 7);
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
        let ns: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        assert!(ns.contains(&&json!({"type": "mount"})) && ns.contains(&&json!({"type": "pid"})));
        // hull's own loader takes it (given a rootfs).
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let bundle = runtime::bundle::Bundle::load(dir.path()).unwrap();
        assert!(bundle.terminal());
    }

    #[test]
    fn never_overwrites() {
        let dir = TempDir::new("cmd-spec-exists");
        std::fs::write(dir.path().join(CONFIG_FILE), "mine").unwrap();
        let e = write(dir.path()).unwrap_err();
        assert_eq!(e.to_string(), "File config.json exists. Remove it first");
        assert_eq!(
            std::fs::read(dir.path().join(CONFIG_FILE)).unwrap(),
            b"mine"
        );
        let e = write(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().starts_with("cannot create"), "{e}");
    }

    #[test]
    fn options() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            args: liboci_cli::Spec,
        }
        let parse = |s: &str| {
            let argv = std::iter::once("spec").chain(s.split_whitespace());
            Cmd::try_parse_from(argv)
                .map_err(anyhow::Error::from)
                .and_then(|c| bundle_dir(&c.args))
        };
        assert_eq!(parse("").unwrap(), PathBuf::from("."));
        assert_eq!(parse("-b /x").unwrap(), PathBuf::from("/x"));
        assert_eq!(parse("--bundle=/y").unwrap(), PathBuf::from("/y"));
        assert!(parse("--bundle").is_err());
        assert!(parse("--rootless").is_err());
        assert!(parse("extra").is_err());
    }
}
