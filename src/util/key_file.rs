//! Reading key and certificate files named in a configuration: bounded in
//! size, with errors that name the configuration field and never repeat its
//! value (a path field holding pasted PEM text is the common mistake, and the
//! error must not print the key), and a warning when the file is readable by
//! group or others.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The largest key or certificate file read (a PEM key is a few KiB).
pub const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

/// The text of the file `path` that configuration field `field` names.
/// `inline_field` is the field that takes the same content inline, named in
/// the error when `path` is PEM text rather than a path. The text is wiped
/// from memory when dropped.
pub fn read_text(field: &str, path: &Path, inline_field: &str) -> Result<Zeroizing<String>> {
    let bytes = read_bytes(field, path, inline_field)?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(Error::config(field, "names a file that is not UTF-8 text")),
    }
}

/// The bytes of the file `path` that configuration field `field` names, at
/// most [`MAX_KEY_FILE_BYTES`] (a path like `/dev/zero` must not exhaust
/// memory), wiped from memory when dropped.
pub fn read_bytes(field: &str, path: &Path, inline_field: &str) -> Result<Zeroizing<Vec<u8>>> {
    if looks_like_pem(path) {
        return Err(Error::config(
            field,
            format!("holds PEM text, not a file path: give the PEM in {inline_field}"),
        ));
    }
    let unreadable = |e: std::io::Error| {
        Error::config(
            field,
            format!("names a file that cannot be read ({})", e.kind()),
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    warn_if_shared(field, path, &file);
    let mut data = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(unreadable)?;
    if data.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(Error::config(
            field,
            "names a file larger than 1 MiB: not a key or certificate file",
        ));
    }
    Ok(data)
}

/// A path no one would give: PEM armour or a line break.
fn looks_like_pem(path: &Path) -> bool {
    let text = path.as_os_str().as_encoded_bytes();
    text.windows(5).any(|w| w == b"-----") || text.contains(&b'\n')
}

/// Warns once per field and file, through the `log` facade, when the key
/// file is readable by its group or by others.
#[cfg(unix)]
fn warn_if_shared(field: &str, path: &Path, file: &std::fs::File) {
    use std::os::unix::fs::PermissionsExt;
    static WARNED: OnceLock<Mutex<HashSet<(String, std::path::PathBuf)>>> = OnceLock::new();
    let Ok(metadata) = file.metadata() else {
        return;
    };
    let mode = metadata.permissions().mode();
    if !metadata.is_file() || mode & 0o044 == 0 {
        return;
    }
    let first = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert((field.to_owned(), path.to_path_buf()));
    if first {
        log::warn!(
            "the file {field} names is readable by group or others (mode {:o}): chmod 600 it",
            mode & 0o777
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_field: &str, _path: &Path, _file: &std::fs::File) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_text_where_a_path_belongs_is_named_not_repeated() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
        let err = read_text(
            "merchant_private_key_file",
            Path::new(pem),
            "merchant_private_key",
        )
        .expect_err("not a path");
        let message = err.to_string();
        assert!(message.contains("merchant_private_key_file"), "{message}");
        assert!(
            message.contains("give the PEM in merchant_private_key"),
            "{message}"
        );
        assert!(
            !message.contains("MIIE") && !message.contains("BEGIN"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_or_endless_file_is_named_by_its_field_only() {
        let secret_path = Path::new("/nonexistent/SECRET-LOOKING-PATH");
        let message = read_text(
            "wechatpay_public_key_file",
            secret_path,
            "wechatpay_public_key",
        )
        .expect_err("missing")
        .to_string();
        assert!(message.contains("wechatpay_public_key_file"), "{message}");
        assert!(message.contains("cannot be read"), "{message}");
        assert!(!message.contains("SECRET-LOOKING-PATH"), "{message}");
        let message = read_bytes(
            "client_cert.pkcs12_file",
            Path::new("/dev/zero"),
            "client_cert.pem",
        )
        .expect_err("endless")
        .to_string();
        assert!(message.contains("larger than 1 MiB"), "{message}");
    }
}
