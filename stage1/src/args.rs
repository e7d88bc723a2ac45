//! The entrypoints' command lines, parsed as rkt's own stage1 parses them
//! (Go's `flag` package): `-f` and `--f` alike, `--f=v` or `--f v` for a
//! value flag, `--f`, `--f=true` or `--f=false` for a boolean, flags end
//! at the first non-flag argument or at `--`. What stage0 passes, per
//! entrypoint (rkt `stage0/run.go`, `enter.go`, `gc.go`, `stop.go`,
//! `app_*.go`, interface version 5):
//!
//! - run: `[--debug] --net=LIST [--interactive] [--private-users=SHIFT]
//!   [--mds-token=T] [--local-config=DIR] [--hostname=H]
//!   [--dns-conf-mode=resolv=X,hosts=Y] [--disable-capabilities-restriction]
//!   [--disable-paths] [--disable-seccomp] [--mutable] UUID`
//! - enter: `--pid=PID --appname=NAME -- CMD [ARG…]`
//! - gc: `[--debug] [--local-config DIR] UUID`; stop: `[--force] UUID`
//! - app add: `--debug=BOOL --uuid=UUID --app=NAME`; app start/stop/rm:
//!   `--debug=BOOL --app=NAME`

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("{entrypoint}: unknown flag {flag}")]
    Unknown { entrypoint: String, flag: String },
    #[error("{entrypoint}: flag {flag} needs a value")]
    NoValue { entrypoint: String, flag: String },
    #[error("{entrypoint}: flag {flag}: {value:?} is not a boolean")]
    NotBool {
        entrypoint: String,
        flag: String,
        value: String,
    },
    #[error("{entrypoint}: {what}")]
    Usage { entrypoint: String, what: String },
}

/// Whether a flag takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Value,
}

/// The flags one entrypoint accepts.
pub struct Spec {
    pub entrypoint: &'static str,
    pub flags: &'static [(&'static str, Kind)],
}

/// A parsed command line: flag values (booleans as "true"/"false") and the
/// positional arguments.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub flags: BTreeMap<String, String>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn flag(&self, name: &str) -> bool {
        self.flags.get(name).map(String::as_str) == Some("true")
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }
    pub fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }
}

impl Spec {
    fn err_unknown(&self, flag: &str) -> ArgsError {
        ArgsError::Unknown {
            entrypoint: self.entrypoint.into(),
            flag: flag.into(),
        }
    }

    pub fn usage(&self, what: impl Into<String>) -> ArgsError {
        ArgsError::Usage {
            entrypoint: self.entrypoint.into(),
            what: what.into(),
        }
    }

    pub fn parse(&self, args: &[String]) -> Result<Parsed, ArgsError> {
        let mut out = Parsed::default();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            if arg == "--" {
                out.positional.extend(args[i + 1..].iter().cloned());
                return Ok(out);
            }
            let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                out.positional.extend(args[i..].iter().cloned());
                return Ok(out);
            };
            if body.is_empty() || arg == "-" {
                out.positional.extend(args[i..].iter().cloned());
                return Ok(out);
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let kind = self
                .flags
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, k)| *k)
                .ok_or_else(|| self.err_unknown(arg))?;
            let value = match (kind, inline) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some(v)) => parse_bool(&v)
                    .ok_or_else(|| ArgsError::NotBool {
                        entrypoint: self.entrypoint.into(),
                        flag: name.into(),
                        value: v.clone(),
                    })?
                    .to_string(),
                (Kind::Value, Some(v)) => v,
                (Kind::Value, None) => {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| ArgsError::NoValue {
                        entrypoint: self.entrypoint.into(),
                        flag: name.into(),
                    })?
                }
            };
            out.flags.insert(name.to_string(), value);
            i += 1;
        }
        Ok(out)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

pub const RUN: Spec = Spec {
    entrypoint: "run",
    flags: &[
        ("debug", Kind::Bool),
        ("net", Kind::Value),
        ("interactive", Kind::Bool),
        ("private-users", Kind::Value),
        ("mds-token", Kind::Value),
        ("local-config", Kind::Value),
        ("hostname", Kind::Value),
        ("dns-conf-mode", Kind::Value),
        ("disable-capabilities-restriction", Kind::Bool),
        ("disable-paths", Kind::Bool),
        ("disable-seccomp", Kind::Bool),
        ("mutable", Kind::Bool),
        ("ipc", Kind::Value),
    ],
};

pub const ENTER: Spec = Spec {
    entrypoint: "enter",
    flags: &[("pid", Kind::Value), ("appname", Kind::Value)],
};

pub const GC: Spec = Spec {
    entrypoint: "gc",
    flags: &[("debug", Kind::Bool), ("local-config", Kind::Value)],
};

pub const STOP: Spec = Spec {
    entrypoint: "stop",
    flags: &[("force", Kind::Bool), ("debug", Kind::Bool)],
};

/// app add/start/stop/rm (add also gets `--uuid`).
pub const APP: Spec = Spec {
    entrypoint: "app",
    flags: &[
        ("debug", Kind::Bool),
        ("uuid", Kind::Value),
        ("app", Kind::Value),
        // app add, as stage0 documents it for later versions.
        ("disable-capabilities-restriction", Kind::Bool),
        ("disable-paths", Kind::Bool),
        ("disable-seccomp", Kind::Bool),
        ("private-users", Kind::Value),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_as_stage0_calls_it() {
        let p = RUN
            .parse(&v(&[
                "--debug",
                "--net=default",
                "--interactive",
                "--hostname=h1",
                "--dns-conf-mode=resolv=host,hosts=default",
                "--disable-seccomp",
                "--mutable",
                "6f0c1a2b-0000-4000-8000-000000000001",
            ]))
            .unwrap();
        assert!(p.flag("debug") && p.flag("interactive") && p.flag("mutable"));
        assert_eq!(p.value("net"), Some("default"));
        assert_eq!(p.value("dns-conf-mode"), Some("resolv=host,hosts=default"));
        assert_eq!(p.positional, ["6f0c1a2b-0000-4000-8000-000000000001"]);
        assert!(!p.flag("disable-paths"));
    }

    #[test]
    fn value_flags_take_the_next_argument_and_bools_take_literals() {
        let p = GC.parse(&v(&["--local-config", "/etc/rkt", "u"])).unwrap();
        assert_eq!(p.value("local-config"), Some("/etc/rkt"));
        assert_eq!(p.positional, ["u"]);
        let p = APP.parse(&v(&["--debug=false", "--app=web"])).unwrap();
        assert!(!p.flag("debug"));
        assert_eq!(p.value("app"), Some("web"));
        let e = APP.parse(&v(&["--debug=maybe"])).unwrap_err();
        assert!(matches!(e, ArgsError::NotBool { .. }));
    }

    #[test]
    fn enter_stops_at_the_separator() {
        let p = ENTER
            .parse(&v(&["--pid=42", "--appname=web", "--", "sh", "-c", "--x"]))
            .unwrap();
        assert_eq!(p.value("pid"), Some("42"));
        assert_eq!(p.positional, ["sh", "-c", "--x"]);
    }

    #[test]
    fn unknown_flags_and_missing_values_are_errors() {
        let e = RUN.parse(&v(&["--no-such-flag", "u"])).unwrap_err();
        assert_eq!(e.to_string(), "run: unknown flag --no-such-flag");
        let e = GC.parse(&v(&["--local-config"])).unwrap_err();
        assert!(matches!(e, ArgsError::NoValue { .. }));
    }
}
