//! The `config.json` of a run from an image: `hull spec`'s defaults (runc's
//! example), the image's `Entrypoint`, `Cmd`, `Env`, `WorkingDir` and `User`
//! (`ExposedPorts` ignored), then the options over them, as `podman run`
//! and `docker run` merge them.

use std::path::Path;

use oci_spec::image::Config as ImageConfig;
use serde_json::{json, Value};

use super::options::RunOptions;
use super::{users, FromImageError};
use crate::bundle::default_spec::default_spec;

/// The `PATH` a container gets when its image sets none (Docker's).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Sets `KEY=…` in `env`, replacing an earlier entry of the same key.
fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry
        .split_once('=')
        .map_or(entry.as_str(), |(k, _)| k)
        .to_string();
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(entry);
}

/// The process's arguments: the Entrypoint, then the command given or the
/// image's Cmd.
fn args(image: Option<&ImageConfig>, command: &[String]) -> Result<Vec<String>, FromImageError> {
    let entrypoint = image
        .and_then(|c| c.entrypoint().clone())
        .unwrap_or_default();
    let cmd = match command.is_empty() {
        true => image.and_then(|c| c.cmd().clone()).unwrap_or_default(),
        false => command.to_vec(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(FromImageError::BadOption(
            "no command: the image has no Entrypoint or Cmd; give one after --".into(),
        ));
    }
    Ok(args)
}

/// The spec for a container of `id` whose root is `rootfs` (the image's
/// unpacked layers, or `--rootfs`).
pub fn generate(
    id: &str,
    rootfs: &Path,
    image: Option<&ImageConfig>,
    opts: &RunOptions,
) -> Result<Value, FromImageError> {
    let mut spec = default_spec();
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    let mut env: Vec<String> = Vec::new();
    for e in image.and_then(|c| c.env().clone()).unwrap_or_default() {
        set_env(&mut env, e);
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        set_env(&mut env, DEFAULT_PATH.into());
    }
    set_env(&mut env, format!("HOSTNAME={hostname}"));
    if opts.tty {
        set_env(&mut env, "TERM=xterm".into());
    }
    for e in &opts.env {
        set_env(&mut env, e.clone());
    }
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| image.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(FromImageError::BadOption(format!(
            "working directory {cwd:?} is not absolute"
        )));
    }
    let user_spec = opts
        .user
        .clone()
        .or_else(|| image.and_then(|c| c.user().clone()))
        .unwrap_or_default();
    let user = users::resolve(rootfs, &user_spec)?;
    spec["process"]["args"] = json!(args(image, &opts.command)?);
    spec["process"]["env"] = json!(env);
    spec["process"]["cwd"] = json!(cwd);
    spec["process"]["terminal"] = json!(opts.tty);
    spec["process"]["user"] = json!({
        "uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids,
    });
    spec["hostname"] = json!(hostname);
    spec["root"] = json!({"path": rootfs, "readonly": false});
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for v in &opts.volumes {
            let mut options = vec!["rbind", "rprivate"];
            if v.readonly {
                options.push("ro");
            }
            mounts.push(json!({
                "destination": v.container, "type": "bind", "source": v.host, "options": options,
            }));
        }
    }
    if let Some(limit) = opts.memory {
        spec["linux"]["resources"]["memory"] = json!({"limit": limit});
    }
    if let Some((quota, period)) = opts.cpu {
        spec["linux"]["resources"]["cpu"] = json!({"quota": quota, "period": period});
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_image::options::Volume;
    use crate::testutil::TempDir;

    fn image_config(json: Value) -> ImageConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_image_then_the_options() {
        let root = TempDir::new("gen");
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/passwd"), "app:x:100:101::/:/bin/sh\n").unwrap();
        let img = image_config(json!({
            "Entrypoint": ["/bin/entry"], "Cmd": ["serve", "--port", "80"],
            "Env": ["PATH=/opt/bin", "MODE=prod"], "WorkingDir": "/srv", "User": "app",
            "ExposedPorts": {"80/tcp": {}},
        }));
        let spec = generate(
            "0123456789abcdef",
            root.path(),
            Some(&img),
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(
            spec["process"]["args"],
            json!(["/bin/entry", "serve", "--port", "80"])
        );
        assert_eq!(
            spec["process"]["env"],
            json!(["PATH=/opt/bin", "MODE=prod", "HOSTNAME=0123456789ab"])
        );
        assert_eq!(spec["process"]["cwd"], "/srv");
        assert_eq!(spec["process"]["user"]["uid"], 100);
        assert_eq!(spec["process"]["user"]["gid"], 101);
        assert_eq!(spec["hostname"], "0123456789ab");
        assert_eq!(spec["root"]["readonly"], false);

        let host = root.path().join("etc");
        let opts = RunOptions {
            command: vec!["debug".into()],
            env: vec!["MODE=dev".into(), "EXTRA=1".into()],
            workdir: Some("/tmp".into()),
            user: Some("0:0".into()),
            volumes: vec![Volume {
                host: host.clone(),
                container: "/data".into(),
                readonly: true,
            }],
            tty: true,
            hostname: Some("box".into()),
            memory: Some(64 << 20),
            cpu: Some((50_000, 100_000)),
        };
        let spec = generate("id", root.path(), Some(&img), &opts).unwrap();
        assert_eq!(
            spec["process"]["args"],
            json!(["/bin/entry", "debug"]),
            "the Entrypoint stays"
        );
        let env = spec["process"]["env"].as_array().unwrap();
        for want in [
            "MODE=dev",
            "EXTRA=1",
            "TERM=xterm",
            "HOSTNAME=box",
            "PATH=/opt/bin",
        ] {
            assert!(env.contains(&json!(want)), "{want} in {env:?}");
        }
        assert!(!env.contains(&json!("MODE=prod")));
        assert_eq!(spec["process"]["terminal"], true);
        assert_eq!(spec["process"]["cwd"], "/tmp");
        assert_eq!(spec["process"]["user"]["uid"], 0);
        let last = spec["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["destination"], "/data");
        assert_eq!(last["options"], json!(["rbind", "rprivate", "ro"]));
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(spec["linux"]["resources"]["cpu"]["quota"], 50_000);
        // What hull loads.
        let bundle = TempDir::new("gen-bundle");
        std::fs::write(bundle.path().join("config.json"), spec.to_string()).unwrap();
        crate::bundle::Bundle::load(bundle.path()).unwrap();
    }

    #[test]
    fn a_command_is_needed_and_paths_are_absolute() {
        let root = TempDir::new("gen-none");
        let e = generate("id", root.path(), None, &RunOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no command"), "{e}");
        let opts = RunOptions {
            command: vec!["true".into()],
            workdir: Some("rel".into()),
            ..RunOptions::default()
        };
        assert!(generate("id", root.path(), None, &opts).is_err());
        let opts = RunOptions {
            command: vec!["true".into()],
            ..RunOptions::default()
        };
        let spec = generate("id", root.path(), None, &opts).unwrap();
        assert_eq!(spec["process"]["env"][0], DEFAULT_PATH);
        assert_eq!(spec["process"]["cwd"], "/");
    }
}
