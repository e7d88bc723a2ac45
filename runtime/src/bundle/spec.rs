//! `config.json`: one model, `oci-spec`'s runtime [`Spec`]. This module
//! reads it ([`parse`]), names what the model did not understand (fields
//! newer than `oci-spec`, or misspelt: logged by the caller, as runc
//! ignores unknown fields), and derives the validated views hull's host
//! side works with: [`hooks::Hooks`] and [`resources::LinuxResources`].
//! Whether each field is applied or refused is [`support`]'s job.

use std::collections::BTreeMap;
use std::path::Path;

pub use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;

pub mod hooks;
pub mod resources;
pub mod support;

pub use hooks::{Hook, HookKind, Hooks};
pub use resources::LinuxResources;

/// A parsed spec and the JSON paths of fields `oci-spec` does not model.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub spec: Spec,
    pub unknown_fields: Vec<String>,
}

/// Parses `config.json`. Go's decoder, which runc uses, gives a missing
/// `process.user` the zero value (uid 0, gid 0); `oci-spec` requires it, so
/// it is filled in the same way; a missing `process.cwd` is `/`, as hull
/// has always taken it.
pub fn parse(bytes: &[u8]) -> Result<Parsed, serde_json::Error> {
    let mut raw: Value = serde_json::from_slice(bytes)?;
    if let Some(process) = raw.get_mut("process").and_then(Value::as_object_mut) {
        process
            .entry("user")
            .or_insert_with(|| serde_json::json!({}));
        process.entry("cwd").or_insert_with(|| "/".into());
    }
    let spec: Spec = serde_json::from_value(raw.clone())?;
    let understood = serde_json::to_value(&spec)?;
    let mut unknown_fields = Vec::new();
    unknown(&raw, &understood, "", &mut unknown_fields);
    Ok(Parsed {
        spec,
        unknown_fields,
    })
}

/// Object keys of `raw` (non-null) that `understood` lacks, as dotted paths.
fn unknown(raw: &Value, understood: &Value, path: &str, out: &mut Vec<String>) {
    match (raw, understood) {
        (Value::Object(r), Value::Object(u)) => {
            for (key, value) in r {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match u.get(key) {
                    Some(v) => unknown(value, v, &sub, out),
                    None if !value.is_null() => out.push(sub),
                    None => {}
                }
            }
        }
        (Value::Array(r), Value::Array(u)) => {
            for (i, (a, b)) in r.iter().zip(u).enumerate() {
                unknown(a, b, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The `path` of the namespace of type `typ`, when it is listed with a
/// non-empty path.
pub fn namespace_path(spec: &Spec, typ: LinuxNamespaceType) -> Option<&Path> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|ns| ns.typ() == typ)?
        .path()
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
}

/// Parses an exec's `process.json` (with the same defaults as [`parse`]).
pub fn parse_process(bytes: &[u8]) -> Result<oci_spec::runtime::Process, serde_json::Error> {
    let mut raw: Value = serde_json::from_slice(bytes)?;
    if let Some(process) = raw.as_object_mut() {
        process
            .entry("user")
            .or_insert_with(|| serde_json::json!({}));
        process.entry("cwd").or_insert_with(|| "/".into());
    }
    serde_json::from_value(raw)
}

/// The path of the network namespace the container is to join.
pub fn network_namespace_path(spec: &Spec) -> Option<&Path> {
    namespace_path(spec, LinuxNamespaceType::Network)
}

/// The spec's annotations, ordered.
pub fn annotations(spec: &Spec) -> BTreeMap<String, String> {
    spec.annotations()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Gives a terminal process the size `size` when its spec names none.
pub fn default_console_size(
    process: &mut oci_spec::runtime::Process,
    size: Option<agent_protocol::container::WindowSize>,
) {
    if process.terminal() != Some(true) || process.console_size().is_some() {
        return;
    }
    if let Some(size) = size {
        let built = oci_spec::runtime::BoxBuilder::default()
            .height(u64::from(size.rows))
            .width(u64::from(size.cols))
            .build();
        if let Ok(b) = built {
            process.set_console_size(Some(b));
        }
    }
}

/// Whether the init process uses a terminal.
pub fn terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
