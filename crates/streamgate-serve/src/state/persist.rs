//! The `--state` file: revocations and blocks as JSON, replaced whole on every change by
//! writing a temporary file beside it, syncing it and renaming it over the old one. A crash
//! at any point leaves either the old file or the new one, never half of either.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use streamgate_core::policy::ip::IpRange;

use super::{StateError, StateResult};

/// The file's format version; a file of another version is refused, not misread.
const VERSION: u32 = 1;

/// What the file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Persisted {
    pub version: u32,
    pub revocations: Vec<RevokedId>,
    pub blocks: Vec<BlockedRange>,
    pub referrers: Vec<BlockedReferrer>,
}

/// A revoked token id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RevokedId {
    pub id: String,
    /// Unix seconds; absent until lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// A blocked client range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlockedRange {
    pub range: IpRange,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// A blocked referrer host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlockedReferrer {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

impl Persisted {
    /// An empty state of the current version.
    pub fn empty() -> Persisted {
        Persisted { version: VERSION, ..Persisted::default() }
    }
}

/// Reads the state file; a missing file is an empty state. A file that cannot be read is
/// an error: starting without its revocations would silently let revoked tokens play.
pub(crate) fn load(path: &Path) -> StateResult<Persisted> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Persisted::empty()),
        Err(error) => return Err(StateError(format!("cannot read {}: {error}", path.display()))),
    };
    let persisted: Persisted = serde_json::from_str(&text)
        .map_err(|e| StateError(format!("{} is not a streamgate state file: {e}", path.display())))?;
    if persisted.version != VERSION {
        return Err(StateError(format!(
            "{} has format version {}, this streamgate reads {VERSION}",
            path.display(),
            persisted.version
        )));
    }
    Ok(persisted)
}

/// Replaces the state file atomically (blocking I/O: call it off the async threads).
pub(crate) fn store(path: &Path, state: &Persisted) -> StateResult<()> {
    let fail = |what: &str, error: std::io::Error| StateError(format!("{what} {}: {error}", path.display()));
    let text = serde_json::to_vec_pretty(state).map_err(|e| StateError(e.to_string()))?;
    let temporary = temporary_path(path);
    let mut file = std::fs::File::create(&temporary).map_err(|e| fail("cannot create a temporary file for", e))?;
    file.write_all(&text).and_then(|()| file.sync_all()).map_err(|e| fail("cannot write", e))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|e| fail("cannot replace", e))?;
    // The rename itself is durable once the directory is synced.
    std::fs::File::open(folder_of(path)).and_then(|d| d.sync_all()).map_err(|e| fail("cannot sync the folder of", e))
}

/// The folder that holds `path`: `.` for a bare file name (`--state state.json`).
fn folder_of(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `<file>.tmp` beside the file (the same file system, so the rename is atomic).
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (review): `--state state.json` has an empty parent, and its folder was
    /// never synced after the rename.
    #[test]
    fn a_bare_file_name_lives_in_the_current_folder() {
        assert_eq!(folder_of(Path::new("state.json")), Path::new("."));
        assert_eq!(folder_of(Path::new("/var/lib/sg/state.json")), Path::new("/var/lib/sg"));
        assert_eq!(folder_of(Path::new("./state.json")), Path::new("."));
    }

    #[test]
    fn round_trips_and_replaces_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), Persisted::empty(), "a missing file is an empty state");
        let state = Persisted {
            revocations: vec![RevokedId { id: "jti-1".into(), until: Some(100) }],
            blocks: vec![BlockedRange { range: IpRange::parse("192.0.2.0/24").unwrap(), until: None }],
            referrers: vec![BlockedReferrer { host: "*.pirate.test".into(), until: None }],
            ..Persisted::empty()
        };
        store(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), state);
        assert!(!temporary_path(&path).exists(), "the temporary file was renamed over the old one");
    }

    #[test]
    fn refuses_a_file_it_cannot_read_rather_than_starting_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\"version\": 1, \"revocations\": [").unwrap();
        assert!(load(&path).unwrap_err().0.contains("not a streamgate state file"));
        std::fs::write(&path, r#"{"version": 9, "revocations": [], "blocks": [], "referrers": []}"#).unwrap();
        assert!(load(&path).unwrap_err().0.contains("format version 9"));
    }
}
