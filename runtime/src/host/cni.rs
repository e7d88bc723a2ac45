//! A container's network from CNI plugins, for the uses with no engine in
//! front (`hull run --image --network default`, later rkt's stage1): a
//! named network namespace (as `ip netns add` makes one), the plugins of a
//! network configuration list run in order with `ADD` (each given the
//! previous result) and in reverse with `DEL`, as the CNI specification
//! says and `libcni` does. The sandbox then enters the namespace and wires
//! its interface to the VM like any engine's.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

pub mod netns;

/// Where Debian's `containernetworking-plugins` are (`CNI_PATH` overrides).
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/cni";
/// The CNI version hull speaks.
pub const CNI_VERSION: &str = "1.0.0";
/// A plugin's result is read up to this much.
const MAX_RESULT_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CNI plugin {plugin}: {source}")]
    Exec {
        plugin: String,
        source: std::io::Error,
    },
    #[error("CNI plugin {plugin} {command} failed: {message}")]
    Plugin {
        plugin: String,
        command: &'static str,
        message: String,
    },
    #[error("CNI network list: {0}")]
    Config(String),
}

/// hull's default network: a bridge with NAT and host-local addresses, and
/// port mappings (`-p`), like Podman's `podman` network.
pub fn default_network(name: &str, bridge: &str, subnet: &str) -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
}

/// One attachment: a container's interface in a namespace on a network.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    pub netns: PathBuf,
    pub ifname: String,
    pub network: Value,
    /// `runtimeConfig` for the plugins that ask for a capability
    /// (`portMappings`).
    pub runtime_config: Value,
    pub plugin_dir: PathBuf,
}

impl Attachment {
    fn plugins(&self) -> Result<&Vec<Value>, CniError> {
        self.network["plugins"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| CniError::Config("no plugins".into()))
    }

    /// The stdin config of `plugin`: the network's name and version, the
    /// runtime config of the capabilities it names, the previous result.
    fn plugin_config(&self, plugin: &Value, prev: Option<&Value>) -> Value {
        let mut config = plugin.clone();
        config["name"] = self.network["name"].clone();
        config["cniVersion"] = self.network["cniVersion"].clone();
        if let Some(caps) = plugin["capabilities"].as_object() {
            let wanted: serde_json::Map<String, Value> = caps
                .iter()
                .filter(|(_, on)| on.as_bool() == Some(true))
                .filter_map(|(k, _)| Some((k.clone(), self.runtime_config.get(k)?.clone())))
                .collect();
            if !wanted.is_empty() {
                config["runtimeConfig"] = Value::Object(wanted);
            }
        }
        if let Some(prev) = prev {
            config["prevResult"] = prev.clone();
        }
        config
    }

    fn exec(
        &self,
        command: &'static str,
        plugin: &Value,
        prev: Option<&Value>,
    ) -> Result<Value, CniError> {
        let kind = plugin["type"].as_str().unwrap_or_default();
        if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
            return Err(CniError::Config(format!("bad plugin type {kind:?}")));
        }
        let exec_err = |source| CniError::Exec {
            plugin: kind.to_string(),
            source,
        };
        let mut child = Command::new(self.plugin_dir.join(kind))
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_PATH", &self.plugin_dir)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(exec_err)?;
        let config = self.plugin_config(plugin, prev).to_string();
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(config.as_bytes()).map_err(exec_err)?;
        }
        let mut out = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            stdout
                .take(MAX_RESULT_BYTES)
                .read_to_end(&mut out)
                .map_err(exec_err)?;
        }
        let mut err = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            let _ = stderr.take(MAX_RESULT_BYTES).read_to_end(&mut err);
        }
        let status = child.wait().map_err(exec_err)?;
        let result: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        if !status.success() {
            let message = result["msg"]
                .as_str()
                .map(|m| match result["details"].as_str() {
                    Some(d) if !d.is_empty() => format!("{m}: {d}"),
                    _ => m.to_string(),
                })
                .unwrap_or_else(|| format!("{status}: {}", String::from_utf8_lossy(&err).trim()));
            return Err(CniError::Plugin {
                plugin: kind.to_string(),
                command,
                message,
            });
        }
        Ok(result)
    }

    /// `ADD` through the list; the last plugin's result. A failure undoes
    /// what was added (`DEL` of the plugins run so far).
    pub fn add(&self) -> Result<Value, CniError> {
        let plugins = self.plugins()?;
        let mut prev: Option<Value> = None;
        for (i, plugin) in plugins.iter().enumerate() {
            match self.exec("ADD", plugin, prev.as_ref()) {
                Ok(result) => prev = Some(result),
                Err(e) => {
                    for p in plugins[..=i].iter().rev() {
                        let _ = self.exec("DEL", p, prev.as_ref());
                    }
                    return Err(e);
                }
            }
        }
        prev.ok_or_else(|| CniError::Config("no result".into()))
    }

    /// `DEL` through the list in reverse, with the result of `add` (best
    /// effort: every plugin is asked; the first error is returned).
    pub fn del(&self, result: Option<&Value>) -> Result<(), CniError> {
        let mut first = None;
        for plugin in self.plugins()?.iter().rev() {
            if let Err(e) = self.exec("DEL", plugin, result) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// The first IPv4 address (without prefix) of a CNI result.
pub fn first_ipv4(result: &Value) -> Option<String> {
    result["ips"].as_array()?.iter().find_map(|ip| {
        let addr = ip["address"].as_str()?;
        let (a, _) = addr.split_once('/')?;
        a.parse::<std::net::Ipv4Addr>().ok().map(|a| a.to_string())
    })
}

/// The plugin directory: `CNI_PATH`'s first entry, else Debian's.
pub fn plugin_dir() -> PathBuf {
    std::env::var("CNI_PATH")
        .ok()
        .and_then(|p| p.split(':').next().map(PathBuf::from))
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| Path::new(DEFAULT_PLUGIN_DIR).to_path_buf())
}

#[cfg(test)]
mod tests;
