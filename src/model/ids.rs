//! Identifiers: unguessable ones (hook ids, login tokens) and the stable, made-up numbers the
//! Hub API shows for things hubmock names only by name (users, repositories).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::time::Timestamp;

/// The alphabet Docker Hub's hook ids are drawn from *(observed)*: `[0-9a-j]`.
const HOOK_ALPHABET: &[u8; 20] = b"0123456789abcdefghij";

/// Length of a hook id: 32 symbols of a 20-letter alphabet carry 138 bits.
pub const HOOK_ID_LEN: usize = 32;

/// How many bytes of the operating system's generator each thread draws at once: one
/// `getrandom` call serves about a hundred hook ids instead of one (a push makes one a
/// pipeline, under the state's lock).
const POOL: usize = 4096;

thread_local! {
    /// Bytes drawn from the operating system's generator and not handed out yet (each byte is
    /// handed out once), and where the unused ones start.
    static DRAWN: std::cell::RefCell<([u8; POOL], usize)> =
        const { std::cell::RefCell::new(([0; POOL], POOL)) };
}

/// Fills `buf` with bytes from the operating system's generator (drawn ahead, a pool a
/// thread: they are the OS's bytes all the same, never a PRNG's).
fn random_bytes(buf: &mut [u8]) {
    DRAWN.with_borrow_mut(|(pool, used)| {
        let mut filled = 0;
        while filled < buf.len() {
            if *used == POOL {
                // The OS generator failing is not something a test double can recover from.
                getrandom::fill(pool)
                    .expect("the operating system's random generator is unavailable");
                *used = 0;
            }
            let take = (buf.len() - filled).min(POOL - *used);
            buf[filled..filled + take].copy_from_slice(&pool[*used..*used + take]);
            // Handed out once: what a caller got is not in the pool any more.
            pool[*used..*used + take].fill(0);
            *used += take;
            filled += take;
        }
    });
}

/// A new hook id: 32 random characters of `[0-9a-j]`.
pub fn new_hook_id() -> String {
    let mut id = String::with_capacity(HOOK_ID_LEN);
    let mut buf = [0u8; 64];
    while id.len() < HOOK_ID_LEN {
        random_bytes(&mut buf);
        // Rejection sampling keeps every symbol equally likely: 240 is the largest multiple of 20.
        for &b in buf.iter().filter(|&&b| b < 240) {
            if id.len() == HOOK_ID_LEN {
                break;
            }
            id.push(HOOK_ALPHABET[(b % 20) as usize] as char);
        }
    }
    id
}

/// A random 64-bit number (names a registry put in the journal).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    random_bytes(&mut buf);
    u64::from_le_bytes(buf)
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = vec![0u8; n];
    random_bytes(&mut buf);
    let mut hex = String::with_capacity(2 * n);
    for b in buf {
        hex.push(HEX[usize::from(b >> 4)] as char);
        hex.push(HEX[usize::from(b & 0xf)] as char);
    }
    hex
}

/// A new login token for `user`, shaped as Docker Hub's are: a JWT (`header.claims.signature`,
/// base64url) whose claims say who it is for and when it was issued and expires, so a client
/// that reads them works (`exp` is when the store stops taking it). The signature is 32
/// random bytes: the token is only ever looked up whole, never verified.
pub fn new_token(user: &str, issued: Timestamp, expires: Timestamp) -> String {
    let iat = issued.unix_whole_seconds().max(0) as u64;
    let exp = expires.unix_whole_seconds().max(0) as u64;
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let claims = serde_json::json!({
        "iss": "hubmock",
        "sub": user,
        "username": user,
        "iat": iat,
        "exp": exp,
        "jti": random_hex(16),
    });
    let mut signature = [0u8; 32];
    random_bytes(&mut signature);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A number that stands for `name` wherever the Hub API shows an integer id of something
/// hubmock knows by name (a user, a repository): the same for the same name in every hubmock,
/// across resets and imports, between 1 and 2^53 - 1 (FNV-1a, 64 bits, folded).
pub fn stable_id(name: &str) -> u64 {
    (fnv1a(name.as_bytes(), 0xcbf2_9ce4_8422_2325) % ((1 << 53) - 1)) + 1
}

/// 32 hex digits that stand for `name` where the Hub API shows a user's id as a trimmed UUID.
pub fn stable_hex(name: &str) -> String {
    let high = fnv1a(name.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let low = fnv1a(name.as_bytes(), 0x6c62_272e_07bb_0142);
    format!("{high:016x}{low:016x}")
}

fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether `id` has the shape of a hook id (it may still be unknown).
pub fn is_hook_id(id: &str) -> bool {
    id.len() == HOOK_ID_LEN && id.bytes().all(|b| HOOK_ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_is_lower_case_hex_and_never_repeats_across_the_pool() {
        // Longer than the pool: the draw refills it midway.
        let (a, b) = (random_hex(POOL + 100), random_hex(POOL + 100));
        for hex in [&a, &b] {
            assert_eq!(hex.len(), 2 * (POOL + 100));
            assert!(hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        }
        assert_ne!(a, b);
        // Each 16-byte piece is fresh: no stretch of the pool is handed out twice.
        let pieces: std::collections::HashSet<String> = (0..2000).map(|_| random_hex(16)).collect();
        assert_eq!(pieces.len(), 2000);
    }

    #[test]
    fn hook_ids_use_the_observed_alphabet_and_length() {
        for _ in 0..100 {
            let id = new_hook_id();
            assert!(is_hook_id(&id), "{id}");
        }
        assert_ne!(new_hook_id(), new_hook_id());
    }

    #[test]
    fn a_token_is_a_jwt_whose_claims_name_its_user() {
        let issued = Timestamp::from_unix_seconds(1_700_000_000.0);
        let expires = Timestamp::from_unix_seconds(1_700_000_600.0);
        let token = new_token("alice", issued, expires);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_000_600u64);
        assert_ne!(token, new_token("alice", issued, expires));
    }

    #[test]
    fn stable_ids_are_stable_and_fit_a_javascript_number() {
        assert_eq!(stable_id("acme"), stable_id("acme"));
        assert_ne!(stable_id("acme"), stable_id("acme/app"));
        for name in ["", "a", "acme", "library/nginx"] {
            assert!((1..(1 << 53)).contains(&stable_id(name)), "{name}");
            assert_eq!(stable_hex(name).len(), 32);
        }
    }
}
