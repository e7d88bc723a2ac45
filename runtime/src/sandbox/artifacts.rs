//! Finding `hull-vmm`, the guest kernel and the initramfs: an environment
//! variable (`HULL_VMM`, `HULL_KERNEL`, `HULL_INITRD`) wins, then the
//! installed layout, then a file next to the running `hull`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where `make install` puts hull-vmm.
pub const INSTALLED_VMM: &str = "/usr/local/bin/hull-vmm";
/// Where `make install` puts the kernel and initramfs.
pub const INSTALLED_SHARE: &str = "/usr/local/share/hull";

#[derive(Debug, thiserror::Error)]
#[error("cannot find {what}: set {var}, or install it (looked at {tried})")]
pub struct ArtifactError {
    pub what: &'static str,
    pub var: &'static str,
    pub tried: String,
}

/// The files a sandbox boots from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    pub vmm: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

impl Artifacts {
    /// Looks in the environment, the installed layout and next to this
    /// executable.
    pub fn locate() -> Result<Self, ArtifactError> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Self::locate_with(
            |var| std::env::var_os(var),
            Path::new(INSTALLED_VMM),
            Path::new(INSTALLED_SHARE),
            exe_dir.as_deref(),
        )
    }

    /// [`Artifacts::locate`], with the configured kernel and initramfs
    /// (the config file's `vm.kernel`, `vm.initramfs`) taken as is in place
    /// of the search; `HULL_KERNEL` and `HULL_INITRD` still win.
    pub fn locate_configured(
        kernel: Option<&Path>,
        initrd: Option<&Path>,
    ) -> Result<Self, ArtifactError> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Self::locate_with(
            with_configured(|var| std::env::var_os(var), kernel, initrd),
            Path::new(INSTALLED_VMM),
            Path::new(INSTALLED_SHARE),
            exe_dir.as_deref(),
        )
    }

    /// [`Artifacts::locate`] with its inputs spelled out (for tests).
    pub fn locate_with(
        env: impl Fn(&str) -> Option<OsString>,
        installed_vmm: &Path,
        installed_share: &Path,
        exe_dir: Option<&Path>,
    ) -> Result<Self, ArtifactError> {
        let find = |what, var, installed: PathBuf, file: &str| {
            if let Some(path) = env(var).filter(|v| !v.is_empty()) {
                // An explicit choice is taken as is; a missing file is
                // reported when the VMM is started.
                return Ok(PathBuf::from(path));
            }
            let mut tried = vec![installed];
            tried.extend(exe_dir.map(|d| d.join(file)));
            tried
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .ok_or_else(|| ArtifactError {
                    what,
                    var,
                    tried: tried
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        };
        Ok(Self {
            vmm: find("hull-vmm", "HULL_VMM", installed_vmm.into(), "hull-vmm")?,
            kernel: find(
                "the guest kernel",
                "HULL_KERNEL",
                installed_share.join("vmlinux"),
                "vmlinux",
            )?,
            initrd: find(
                "the guest initramfs",
                "HULL_INITRD",
                installed_share.join("initramfs.cpio"),
                "initramfs.cpio",
            )?,
        })
    }
}

/// `env`, with the configured kernel and initramfs standing in for an
/// unset (or empty) `HULL_KERNEL` and `HULL_INITRD`.
fn with_configured<'a>(
    env: impl Fn(&str) -> Option<OsString> + 'a,
    kernel: Option<&'a Path>,
    initrd: Option<&'a Path>,
) -> impl Fn(&str) -> Option<OsString> + 'a {
    move |var| {
        let configured = match var {
            "HULL_KERNEL" => kernel,
            "HULL_INITRD" => initrd,
            _ => None,
        };
        env(var)
            .filter(|v| !v.is_empty())
            .or_else(|| configured.map(|p| p.as_os_str().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn env_then_installed_then_next_to_the_exe() {
        let installed = TempDir::new("installed");
        let exe = TempDir::new("exe");
        let vmm = installed.path().join("hull-vmm");
        std::fs::write(&vmm, "").unwrap();
        std::fs::write(exe.path().join("vmlinux"), "").unwrap();
        std::fs::write(installed.path().join("vmlinux"), "").unwrap();
        std::fs::write(exe.path().join("initramfs.cpio"), "").unwrap();
        let env = |var: &str| (var == "HULL_KERNEL").then(|| OsString::from("/my/vmlinux"));
        let a = Artifacts::locate_with(env, &vmm, installed.path(), Some(exe.path())).unwrap();
        assert_eq!(a.vmm, vmm);
        assert_eq!(a.kernel, PathBuf::from("/my/vmlinux"));
        assert_eq!(a.initrd, exe.path().join("initramfs.cpio"));
    }

    #[test]
    fn a_missing_artifact_names_the_variable_and_the_places_tried() {
        let empty = TempDir::new("nothing");
        let e =
            Artifacts::locate_with(|_| None, &empty.path().join("hull-vmm"), empty.path(), None)
                .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("cannot find hull-vmm: set HULL_VMM"),
            "{text}"
        );
        assert!(text.contains(&empty.path().join("hull-vmm").display().to_string()));
    }

    #[test]
    fn configured_paths_stand_in_for_unset_variables() {
        let installed = TempDir::new("installed-configured");
        let vmm = installed.path().join("hull-vmm");
        std::fs::write(&vmm, "").unwrap();
        std::fs::write(installed.path().join("vmlinux"), "").unwrap();
        std::fs::write(installed.path().join("initramfs.cpio"), "").unwrap();
        let env = |var: &str| match var {
            "HULL_KERNEL" => Some(OsString::from("/env/vmlinux")),
            "HULL_INITRD" => Some(OsString::new()),
            _ => None,
        };
        let env = with_configured(
            env,
            Some(Path::new("/cfg/vmlinux")),
            Some(Path::new("/cfg/initramfs.cpio")),
        );
        let a = Artifacts::locate_with(env, &vmm, installed.path(), None).unwrap();
        // The environment wins; an empty variable is unset.
        assert_eq!(a.kernel, PathBuf::from("/env/vmlinux"));
        assert_eq!(a.initrd, PathBuf::from("/cfg/initramfs.cpio"));
        // Nothing configured: the installed layout, as before.
        let a = Artifacts::locate_with(
            with_configured(|_| None, None, None),
            &vmm,
            installed.path(),
            None,
        )
        .unwrap();
        assert_eq!(a.kernel, installed.path().join("vmlinux"));
    }
}
