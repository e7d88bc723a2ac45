//! `--network default` for a run from an image: a named network namespace
//! wired by CNI (hull's bridge network, `-p` through the portmap plugin),
//! recorded in the run directory (`network.json`) so that whoever removes
//! the run (the foreground run at its end, or `hull delete`) undoes it.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::options::Publish;
use super::FromImageError;
use crate::host::cni::{self, netns, Attachment, CniError};

/// hull's bridge network: name, bridge, subnet.
pub const NETWORK: (&str, &str, &str) = ("hull", "hull0", "10.89.0.0/24");
const RECORD: &str = "network.json";

fn attachment(id: &str, netns: &Path, publish: &[Publish]) -> Attachment {
    let (name, bridge, subnet) = NETWORK;
    let mappings: Vec<Value> = publish
        .iter()
        .map(|p| {
            json!({"hostPort": p.host_port, "containerPort": p.container_port,
                   "protocol": p.protocol, "hostIP": p.host_ip.clone().unwrap_or_default()})
        })
        .collect();
    Attachment {
        container_id: id.into(),
        netns: netns.into(),
        ifname: "eth0".into(),
        network: cni::default_network(name, bridge, subnet),
        runtime_config: json!({"portMappings": mappings}),
        plugin_dir: cni::plugin_dir(),
    }
}

/// The attached network: the namespace to enter and the address it got.
#[derive(Debug, Clone)]
pub struct Attached {
    pub netns: PathBuf,
    pub ipv4: Option<String>,
}

/// Makes the namespace and runs CNI `ADD`; all undone on error.
pub fn attach(id: &str, run_dir: &Path, publish: &[Publish]) -> Result<Attached, FromImageError> {
    let ns = PathBuf::from("/run/netns").join(format!("hull-{id}"));
    netns::create(&ns)?;
    let a = attachment(id, &ns, publish);
    let result = match a.add() {
        Ok(r) => r,
        Err(e) => {
            let _ = netns::remove(&ns);
            return Err(e.into());
        }
    };
    let record = json!({"netns": ns, "publish": a.runtime_config, "result": result});
    let path = run_dir.join(RECORD);
    if let Err(source) = std::fs::write(&path, record.to_string()) {
        let _ = a.del(Some(&result));
        let _ = netns::remove(&ns);
        return Err(FromImageError::Rootfs { path, source });
    }
    Ok(Attached {
        netns: ns,
        ipv4: cni::first_ipv4(&result),
    })
}

/// Undoes [`attach`] from the run directory's record; nothing recorded is
/// fine.
pub fn detach(id: &str, run_dir: &Path) -> Result<(), FromImageError> {
    let Ok(text) = std::fs::read_to_string(run_dir.join(RECORD)) else {
        return Ok(());
    };
    let record: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let Some(ns) = record["netns"].as_str().map(PathBuf::from) else {
        return Ok(());
    };
    // Only hull's own namespace names.
    if ns != PathBuf::from("/run/netns").join(format!("hull-{id}")) {
        return Err(CniError::Config(format!("{}: not this run's namespace", ns.display())).into());
    }
    let mut a = attachment(id, &ns, &[]);
    a.runtime_config = record["publish"].clone();
    let deleted = a.del(Some(&record["result"]));
    netns::remove(&ns)?;
    deleted.map_err(Into::into)
}

/// `/etc/hosts` and `/etc/resolv.conf` for the container, written into the
/// run directory: bind mounts to add to the spec (source, destination).
pub fn etc_files(
    run_dir: &Path,
    hostname: &str,
    ipv4: Option<&str>,
) -> Result<Vec<(PathBuf, &'static str)>, FromImageError> {
    let write = |name: &str, text: String| {
        let path = run_dir.join(name);
        std::fs::write(&path, text).map_err(|source| FromImageError::Rootfs {
            path: path.clone(),
            source,
        })?;
        Ok::<_, FromImageError>(path)
    };
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost\n");
    if let Some(ip) = ipv4 {
        hosts.push_str(&format!("{ip}\t{hostname}\n"));
    }
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    Ok(vec![
        (write("hosts", hosts)?, "/etc/hosts"),
        (write("resolv.conf", resolv)?, "/etc/resolv.conf"),
    ])
}
