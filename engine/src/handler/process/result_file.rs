//! Reading the result file a task left: never through a symbolic link (a container or child
//! could point it at any file of the host), only a regular file, and only up to
//! [`MAX_RESULT_FILE_BYTES`].

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::limits::MAX_RESULT_FILE_BYTES;

/// The file's bytes; `None` when there is no file. A link, a non-regular file or a file over
/// the limit is an error saying so.
pub(super) fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO left in its place must not block the open.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("the result file is a symbolic link; write a regular file".into());
        }
        Err(e) => return Err(format!("cannot read the result file: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the result file: {e}"))?;
    if !meta.file_type().is_file() {
        return Err("the result file is not a regular file".into());
    }
    if meta.len() > MAX_RESULT_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_RESULT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the result file: {e}"))?;
    if bytes.len() as u64 > MAX_RESULT_FILE_BYTES {
        return Err(too_large());
    }
    Ok(Some(bytes))
}

fn too_large() -> String {
    format!(
        "the result file is larger than {} MiB; keep large data in a file of your own and \
         return its path",
        MAX_RESULT_FILE_BYTES / (1024 * 1024)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_folders_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "top secret").unwrap();
        let link = dir.path().join("result");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        assert!(read(&link).unwrap_err().contains("symbolic link"));
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        assert!(read(&folder).unwrap_err().contains("not a regular file"));
        let big = dir.path().join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_RESULT_FILE_BYTES + 1).unwrap();
        assert!(read(&big).unwrap_err().contains("larger than 16 MiB"));
        assert_eq!(read(&secret).unwrap().unwrap(), b"top secret");
        assert_eq!(read(&dir.path().join("none")).unwrap(), None);
    }
}
