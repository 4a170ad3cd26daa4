//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`) and the hashers that compute them
//! while a blob streams to disk.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

use super::error::RegistryError;

/// A digest algorithm the registry computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the default of every client.
    Sha256,
    /// SHA-512, when a client names it.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name in a digest.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A content digest, `algorithm:hex` (lowercase hex, as the OCI image spec requires).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Written as `algorithm:hex` (the journal's records and map keys).
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Digest::parse(&text).map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

impl Digest {
    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`; anything else is `DIGEST_INVALID`,
    /// with a message that says what is wrong.
    pub fn parse(text: &str) -> Result<Digest, RegistryError> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err(RegistryError::DigestInvalid(format!(
                "'{}' is not a digest: expected algorithm:hex, e.g. sha256:<64 hex digits>",
                shorten(text)
            )));
        };
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                return Err(RegistryError::DigestInvalid(format!(
                    "digest algorithm '{}' is not supported: use sha256 or sha512",
                    shorten(other)
                )))
            }
        };
        let valid_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != algorithm.hex_len() || !valid_hex {
            return Err(RegistryError::DigestInvalid(format!(
                "'{}' is not a {} digest: expected {} lowercase hex digits after '{}:'",
                shorten(text),
                algorithm.as_str(),
                algorithm.hex_len(),
                algorithm.as_str()
            )));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The digest of `bytes` with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

/// A running hash of one algorithm; cloned to roll a chunk back.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// The algorithm it computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Hashes more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything hashed so far (the hasher is kept as it was).
    pub fn finish(&self) -> Digest {
        let (algorithm, bytes) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, h.clone().finalize().to_vec()),
            Hasher::Sha512(h) => (Algorithm::Sha512, h.clone().finalize().to_vec()),
        };
        let mut hex = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            hex.push_str(&format!("{byte:02x}"));
        }
        Digest { algorithm, hex }
    }
}

/// At most 80 characters of a client's text, for an error message.
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_known_content() {
        assert_eq!(
            Digest::of(Algorithm::Sha256, b"{}").to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let sha512 = Digest::of(Algorithm::Sha512, b"");
        assert!(sha512.to_string().starts_with("sha512:cf83e1357eefb8bd"));
        assert_eq!(Digest::parse(&sha512.to_string()).unwrap(), sha512);
    }

    #[test]
    fn malformed_digests_are_refused() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:totallywrong",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }
}
