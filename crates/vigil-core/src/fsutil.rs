//! Putting files into place so that what a 2xx promised survives a power loss.

use std::path::Path;

/// Renames `tmp` to `dest` durably: the file's data is synced first, the
/// rename happens, then the directory is synced so the new name itself is on
/// disk. Without the file sync a crash can leave `dest` empty or short; without
/// the directory sync it can leave the old name (or none).
pub fn rename_durable(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, dest)?;
    sync_dir_of(dest)
}

/// Syncs the directory holding `path` (a new, renamed or removed entry).
pub fn sync_dir_of(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_into_place() {
        let tmp = std::env::temp_dir().join(format!("vigil-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let a = tmp.join("a.part");
        let b = tmp.join("b");
        std::fs::write(&a, b"data").unwrap();
        rename_durable(&a, &b).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"data");
        assert!(!a.exists());
        assert!(rename_durable(&a, &b).is_err());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
