//! `hull state ID`: the container's OCI state as JSON, like `runc state`
//! (pid 0 once stopped).

use crate::Global;
use runtime::state::StateStore;

/// Prints the state.
pub fn main(global: &Global, args: &liboci_cli::State) -> anyhow::Result<i32> {
    let id = args.container_id.as_str();
    println!("{}", render(&StateStore::new(&global.root), id)?);
    Ok(0)
}

/// The JSON `hull state` prints, indented by two spaces as runc does. Like
/// runc's, its `owner` is empty (only `list` fills it in).
pub fn render(store: &StateStore, id: &str) -> anyhow::Result<String> {
    let state = store.load(id)?;
    Ok(serde_json::to_string_pretty(&state.oci(String::new()))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testutil::{dead_state, live_state, store_in};

    #[test]
    fn prints_the_oci_fields() {
        let (_dir, store) = store_in("cmd-state");
        store.save(&live_state(&store, "c1")).unwrap();
        let text = render(&store, "c1").unwrap();
        assert!(text.starts_with("{\n  \"ociVersion\""), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], "c1");
        assert_eq!(v["status"], "running");
        assert_eq!(v["pid"], std::process::id());
        assert_eq!(v["bundle"], "/bundles/c1");
        assert_eq!(v["rootfs"], "/bundles/c1/rootfs");
        assert_eq!(v["annotations"]["org.example"], "yes");
        assert_eq!(v["owner"], "");
        assert!(v["created"].as_str().unwrap().ends_with('Z'));
        assert!(v.get("hull").is_none(), "private fields leaked: {v}");
    }

    #[test]
    fn a_dead_sandbox_is_stopped_with_pid_0() {
        let (_dir, store) = store_in("cmd-state-dead");
        store.save(&dead_state(&store, "c1")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&render(&store, "c1").unwrap()).unwrap();
        assert_eq!(
            (v["status"].as_str(), v["pid"].as_i64()),
            (Some("stopped"), Some(0))
        );
    }

    #[test]
    fn unknown_and_bad_ids() {
        let (_dir, store) = store_in("cmd-state-missing");
        let e = render(&store, "nope").unwrap_err();
        assert_eq!(format!("{e:#}"), "container does not exist");
        let e = render(&store, "../etc").unwrap_err();
        assert!(e.to_string().starts_with("invalid container id"), "{e}");
    }
}
