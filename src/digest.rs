//! Stable digests of ordered text parts: each part length-prefixed (so `("ab", "c")`
//! and `("a", "bc")` differ), SHA-256, the first 16 bytes in hex. Used where an
//! identity must be the same on every replica and every run: a channel's fingerprint,
//! an operational alert's.

use sha2::{Digest, Sha256};

/// The digest of `parts`, in order: 32 hex characters.
pub fn of<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parts_are_delimited() {
        assert_ne!(super::of(["ab", "c"]), super::of(["a", "bc"]));
        assert_eq!(super::of(["x"]).len(), 32);
    }
}
