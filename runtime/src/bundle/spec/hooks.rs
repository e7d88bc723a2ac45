//! The spec's `hooks` object: programs the runtime runs on the host at fixed
//! points of the container's lifecycle (see `host::hooks` for running them).
//! Each hook is checked when the spec is loaded: `path` must be absolute and a
//! `timeout`, when given, must be positive.

use std::fmt;

/// The lifecycle points at which hooks run, by their OCI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// Deprecated by the spec in favour of the three below; runc still runs
    /// it, right after `createRuntime`.
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    /// Every kind, in lifecycle order.
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    /// The key in the spec's `hooks` object.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// Whether a failure only warrants a warning: the spec says a failing
    /// `poststart` or `poststop` hook is logged and the lifecycle goes on;
    /// any other failing hook fails the operation.
    pub fn warn_only(self) -> bool {
        matches!(self, HookKind::Poststart | HookKind::Poststop)
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `hooks`: every list in the order the spec gives it, each hook checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

impl Hooks {
    /// The hooks of one kind.
    pub fn get(&self, kind: HookKind) -> &[Hook] {
        match kind {
            HookKind::Prestart => &self.prestart,
            HookKind::CreateRuntime => &self.create_runtime,
            HookKind::CreateContainer => &self.create_container,
            HookKind::StartContainer => &self.start_container,
            HookKind::Poststart => &self.poststart,
            HookKind::Poststop => &self.poststop,
        }
    }

    /// The spec's `hooks` (none when absent), each checked.
    pub fn from_spec(hooks: Option<&oci_spec::runtime::Hooks>) -> Result<Self, String> {
        let Some(h) = hooks else {
            return Ok(Self::default());
        };
        let list = |l: &Option<Vec<oci_spec::runtime::Hook>>| -> Result<Vec<Hook>, String> {
            l.iter().flatten().map(Hook::try_from).collect()
        };
        #[allow(deprecated)] // runc still runs `prestart`, and so does hull.
        let prestart = list(h.prestart())?;
        Ok(Self {
            prestart,
            create_runtime: list(h.create_runtime())?,
            create_container: list(h.create_container())?,
            start_container: list(h.start_container())?,
            poststart: list(h.poststart())?,
            poststop: list(h.poststop())?,
        })
    }
}

/// One hook, checked: `path` absolute, `timeout` positive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Absolute path of the program, executed as is (no `$PATH` lookup).
    pub path: String,
    /// The whole argv, `args[0]` included; empty means `[path]`.
    pub args: Vec<String>,
    /// The whole environment (`KEY=value` entries); nothing is inherited.
    pub env: Vec<String>,
    /// Seconds the hook may run before it is killed; `None`: no limit.
    pub timeout_secs: Option<u64>,
}

impl TryFrom<&oci_spec::runtime::Hook> for Hook {
    type Error = String;

    fn try_from(raw: &oci_spec::runtime::Hook) -> Result<Self, String> {
        let path = raw.path().to_string_lossy().into_owned();
        if !path.starts_with('/') {
            return Err(format!("hook path {path:?} is not an absolute path"));
        }
        let timeout_secs = match raw.timeout() {
            None => None,
            Some(t) if t > 0 => Some(t.unsigned_abs()),
            Some(t) => {
                return Err(format!(
                    "hook {path}: timeout {t} must be greater than zero"
                ))
            }
        };
        Ok(Hook {
            path,
            args: raw.args().clone().unwrap_or_default(),
            env: raw.env().clone().unwrap_or_default(),
            timeout_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Hooks, String> {
        let raw: oci_spec::runtime::Hooks =
            serde_json::from_str(json).map_err(|e| e.to_string())?;
        Hooks::from_spec(Some(&raw))
    }

    #[test]
    fn every_kind_parses_in_order() {
        let hooks = parse(
            r#"{
                "prestart": [{"path": "/a"}, {"path": "/b", "args": ["b", "-x"]}],
                "createRuntime": [{"path": "/c", "env": ["K=v"], "timeout": 5}],
                "createContainer": null,
                "startContainer": [{"path": "/d"}],
                "poststart": [{"path": "/e"}],
                "poststop": [{"path": "/f", "args": null}]
            }"#,
        )
        .unwrap();
        let paths = |k| {
            hooks
                .get(k)
                .iter()
                .map(|h: &Hook| h.path.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(HookKind::Prestart), ["/a", "/b"]);
        assert_eq!(hooks.prestart[1].args, ["b", "-x"]);
        assert_eq!(hooks.create_runtime[0].env, ["K=v"]);
        assert_eq!(hooks.create_runtime[0].timeout_secs, Some(5));
        assert!(paths(HookKind::CreateContainer).is_empty());
        assert_eq!(paths(HookKind::StartContainer), ["/d"]);
        assert_eq!(paths(HookKind::Poststart), ["/e"]);
        assert_eq!(paths(HookKind::Poststop), ["/f"]);
        assert_eq!(hooks.poststop[0].timeout_secs, None);
    }

    #[test]
    fn relative_paths_and_bad_timeouts_are_refused() {
        let e = parse(r#"{"prestart": [{"path": "bin/hook"}]}"#).unwrap_err();
        assert!(e.contains("\"bin/hook\" is not an absolute path"), "{e}");
        for t in ["0", "-3"] {
            let e = parse(&format!(
                r#"{{"poststop": [{{"path": "/h", "timeout": {t}}}]}}"#
            ))
            .unwrap_err();
            assert!(e.contains("must be greater than zero"), "{e}");
        }
        assert!(parse(r#"{"poststop": [{"args": ["x"]}]}"#).is_err());
    }

    #[test]
    fn kinds_have_their_spec_names() {
        let names: Vec<_> = HookKind::ALL.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            names,
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
        );
        let warn: Vec<_> = HookKind::ALL.iter().filter(|k| k.warn_only()).collect();
        assert_eq!(warn, [&HookKind::Poststart, &HookKind::Poststop]);
    }
}
