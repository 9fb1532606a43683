//! Polar's token format (`kit/crypto.py`): a prefix, 37 random ASCII letters
//! and digits, and a 6-character base62 CRC32 checksum of those 37.

use rand::Rng;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// The checksum in base62, left-padded with `0` to 6 characters.
pub fn checksum(body: &str) -> String {
    let mut n = crc32(body.as_bytes());
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < 6 {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("base62 is ASCII")
}

pub fn generate(prefix: &str) -> String {
    let mut rng = rand::rng();
    let body: String = (0..37)
        .map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char)
        .collect();
    let sum = checksum(&body);
    format!("{prefix}{body}{sum}")
}

/// Whether `token` is `prefix` + 37 alphanumerics + their checksum.
pub fn is_valid(token: &str, prefix: &str) -> bool {
    let Some(rest) = token.strip_prefix(prefix) else {
        return false;
    };
    rest.len() == 43
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        && checksum(&rest[..37]) == rest[37..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polars_published_example_secret_checks_out() {
        assert!(is_valid(
            "polar_cl_gon2ISU4r7oYyjVaxXlRVUv5MKh1H3c1gCxKn1zZGHA",
            "polar_cl_"
        ));
    }

    #[test]
    fn generated_secrets_are_52_characters_and_valid() {
        let s = generate("polar_cl_");
        assert_eq!(s.len(), 52);
        assert!(is_valid(&s, "polar_cl_"));
    }
}
