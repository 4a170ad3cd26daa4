//! Unguessable identifiers: hook ids and login tokens.

/// The alphabet Docker Hub's hook ids are drawn from *(observed)*: `[0-9a-j]`.
const HOOK_ALPHABET: &[u8; 20] = b"0123456789abcdefghij";

/// Length of a hook id: 32 symbols of a 20-letter alphabet carry 138 bits.
pub const HOOK_ID_LEN: usize = 32;

/// Fills `buf` with bytes from the operating system's generator.
fn random_bytes(buf: &mut [u8]) {
    // The OS generator failing is not something a test double can recover from or work around.
    getrandom::fill(buf).expect("the operating system's random generator is unavailable");
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

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    random_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` has the shape of a hook id (it may still be unknown).
pub fn is_hook_id(id: &str) -> bool {
    id.len() == HOOK_ID_LEN && id.bytes().all(|b| HOOK_ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_ids_use_the_observed_alphabet_and_length() {
        for _ in 0..100 {
            let id = new_hook_id();
            assert!(is_hook_id(&id), "{id}");
        }
        assert_ne!(new_hook_id(), new_hook_id());
    }
}
