//! `run`: the pod as one hull VM. The sandbox container (the pause
//! process) owns the VM; each app is a member container in it. This
//! process is the apps' subreaper: the containers' host processes (the pids
//! `hull create --pid-file` reports) are reparented to it, so it waits for
//! them as containerd's shim does and writes each app's exit status.

use std::process::Stdio;

use crate::appc::{ImageManifest, PodManifest};
use crate::args::{Parsed, RUN};
use crate::bundle::{self, app::RunSettings, Dns};
use crate::hull::Hull;
use crate::net::{self, NetMode};
use crate::pod::{PodDir, PodState};
use crate::reap::{self, Member};
use crate::Stage1Error;

/// The validated command line of `run`.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub uuid: String,
    pub debug: bool,
    pub net: NetMode,
    pub interactive: bool,
    pub hostname: Option<String>,
    pub dns: Dns,
    pub caps_restricted: bool,
    pub paths_restricted: bool,
    pub seccomp: bool,
    pub mutable: bool,
}

impl RunArgs {
    pub fn parse(args: &[String]) -> Result<Self, Stage1Error> {
        let p: Parsed = RUN.parse(args)?;
        let [uuid] = p.positional.as_slice() else {
            return Err(RUN
                .usage("expected exactly one argument, the pod's uuid")
                .into());
        };
        if p.value("private-users").is_some_and(|v| !v.is_empty()) {
            return Err(RUN
                .usage("--private-users is not supported: each pod is a VM of its own")
                .into());
        }
        let dns = match p.value("dns-conf-mode") {
            None => Dns::parse("").unwrap_or_default(),
            Some(v) => {
                Dns::parse(v).ok_or_else(|| RUN.usage(format!("bad --dns-conf-mode {v:?}")))?
            }
        };
        Ok(Self {
            uuid: uuid.clone(),
            debug: p.flag("debug"),
            net: NetMode::parse(p.value("net"))?,
            interactive: p.flag("interactive"),
            hostname: p
                .value("hostname")
                .filter(|h| !h.is_empty())
                .map(str::to_string),
            dns,
            caps_restricted: !p.flag("disable-capabilities-restriction"),
            paths_restricted: !p.flag("disable-paths"),
            seccomp: !p.flag("disable-seccomp"),
            mutable: p.flag("mutable"),
        })
    }
}

/// `run`'s entrypoint: the pod's exit status.
pub fn main(args: &[String]) -> Result<i32, Stage1Error> {
    let args = RunArgs::parse(args)?;
    let pod = PodDir::current(Some(&args.uuid))?;
    let manifest = PodManifest::load(&pod.manifest())?;
    let mutable = args.mutable || manifest.mutable();
    if args.interactive && manifest.apps.len() != 1 {
        return Err(RUN
            .usage("--interactive needs a pod of exactly one app")
            .into());
    }
    let hull = Hull::from_env(args.debug);
    let terminal = args.interactive && nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let mut state = PodState {
        hull_bin: hull.bin.clone(),
        hull_root: hull.root.clone(),
        hostname: args
            .hostname
            .clone()
            .unwrap_or_else(|| pod.default_hostname()),
        caps_restricted: args.caps_restricted,
        seccomp: args.seccomp,
        paths_restricted: args.paths_restricted,
        dns: args.dns.clone(),
        mutable,
        netns: None,
        cni_result: None,
        run_pid: std::process::id() as i32,
    };
    // Every app's bundle is checked before anything is made (and made
    // again once the sandbox's network namespace is known).
    let netns_planned = net::netns_path(&pod.uuid);
    let settings = RunSettings {
        netns: Some(&netns_planned),
        sandbox_pid: None,
        caps_restricted: args.caps_restricted,
        seccomp: args.seccomp,
        paths_restricted: args.paths_restricted,
        terminal,
        dns: &args.dns,
    };
    let mut apps = Vec::new();
    for ra in &manifest.apps {
        if !crate::pod::valid_app_name(&ra.name) {
            return Err(RUN.usage(format!("bad app name {:?}", ra.name)).into());
        }
        let image = ImageManifest::load(&pod.app_manifest(&ra.name))?;
        let (config, limits) = bundle::app_config(&pod, &manifest, ra, &image, &settings)?;
        apps.push((ra.name.clone(), image, config, limits));
    }
    if !pod.pause_rootfs().join("bin/busybox").is_file() {
        return Err(Stage1Error::Image(pod.pause_rootfs()));
    }
    crate::lock::keep_lock_fd()?;
    reap::become_subreaper()?;
    reap::catch_stop_signals()?;
    pod.save_state(&state)?;

    let mut started = Started::new(&pod, &hull);
    if args.net == NetMode::Default {
        let (ns, result) = net::attach(&pod.uuid)?;
        state.netns = Some(ns);
        state.cni_result = Some(result);
        pod.save_state(&state)?;
        started.netns = true;
    }
    let outcome = (|| -> Result<i32, Stage1Error> {
        let limits: Vec<_> = apps.iter().map(|(_, _, _, l)| l.clone()).collect();
        let sandbox = bundle::sandbox_config(
            &pod.sandbox_id(),
            &pod.pause_rootfs(),
            &state.hostname,
            state.netns.as_deref(),
            &limits,
        );
        bundle::write_bundle(&pod.sandbox_bundle(), &sandbox)?;
        let pid_file = pod.hull_dir().join("sandbox.pid");
        started.ids.push(pod.sandbox_id());
        hull.create(
            &pod.sandbox_id(),
            &pod.sandbox_bundle(),
            &pid_file,
            Stdio::null(),
        )?;
        hull.start(&pod.sandbox_id())?;
        let sandbox_pid = reap::container_pid(&hull, &pod.sandbox_id(), &pid_file)?;
        PodDir::write_atomic(&pod.pid_file(), &sandbox_pid.to_string())?;
        // The members' network namespace: the sandbox's.
        let member_netns = state
            .netns
            .clone()
            .unwrap_or_else(|| reap::netns_of(sandbox_pid));
        let settings = RunSettings {
            netns: Some(&member_netns),
            sandbox_pid: Some(sandbox_pid),
            ..settings.clone()
        };
        let mut members = Vec::new();
        for (ra, (name, image, _, _)) in manifest.apps.iter().zip(&apps) {
            let (config, _) = bundle::app_config(&pod, &manifest, ra, image, &settings)?;
            let dir = pod.app_bundle(name);
            bundle::write_bundle(&dir, &config)?;
            let id = pod.app_id(name);
            started.ids.push(id.clone());
            let pid_file = dir.join("pid");
            let member = if terminal {
                reap::run_foreground(&hull, &id, &dir, &pid_file)?
            } else {
                let stdin = if args.interactive {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                };
                hull.create(&id, &dir, &pid_file, stdin)?;
                hull.start(&id)?;
                reap::container_pid(&hull, &id, &pid_file)?
            };
            members.push(Member {
                app: name.clone(),
                id,
                pid: member,
            });
        }
        pod.mark_ready()?;
        Ok(reap::wait_pod(&pod, &hull, members, sandbox_pid, mutable))
    })();
    started.cleanup();
    if let Err(e) = &outcome {
        if args.debug {
            eprintln!("stage1: {e}");
        }
    }
    outcome
}

/// What `run` made, undone at its end (also on error).
struct Started<'a> {
    pod: &'a PodDir,
    hull: &'a Hull,
    ids: Vec<String>,
    netns: bool,
}

impl<'a> Started<'a> {
    fn new(pod: &'a PodDir, hull: &'a Hull) -> Self {
        Self {
            pod,
            hull,
            ids: Vec::new(),
            netns: false,
        }
    }

    /// Deletes the pod's containers (apps first, added ones too, the
    /// sandbox last) and its network.
    fn cleanup(&mut self) {
        let sandbox = self.pod.sandbox_id();
        let mut ids: Vec<String> = self.hull.ids_of(&sandbox).unwrap_or_default();
        for id in self.ids.drain(..) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.sort_by_key(|id| *id == sandbox);
        for id in &ids {
            if let Err(e) = self.hull.delete_force(id) {
                eprintln!("stage1: {e}");
            }
        }
        reap::reap_leftovers();
        if self.netns {
            let result = self
                .pod
                .load_state()
                .ok()
                .flatten()
                .and_then(|s| s.cni_result);
            if let Err(e) = net::detach(&self.pod.uuid, result.as_ref()) {
                eprintln!("stage1: removing the pod's network: {e}");
            }
        }
    }
}
