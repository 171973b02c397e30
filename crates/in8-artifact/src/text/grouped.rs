//! The grouped form, for reading aloud and typing: Crockford base32 in checksummed groups.
//!
//! The artifact bytes are written in Crockford's base32 alphabet
//! (`0123456789ABCDEFGHJKMNPQRSTVWXYZ`: no I, L, O, U; when reading, `I`/`L` mean 1, `O`
//! means 0, case is ignored). Every 4 data characters are followed by 1 check character,
//! groups are separated by spaces (dashes and line breaks are also accepted), 6 groups a line.
//!
//! The check character of group `g` (0-based) makes the codeword
//! `s0 = g mod 32, s1..s4 = data, s5 = check` satisfy `Σ αⁱ·sᵢ = 0` over GF(32)
//! (polynomial x⁵ + x² + 1, α = x). Every single wrong character and every swap of two
//! adjacent characters changes the sum, and so does moving a group to another position: the
//! reader is told exactly which group to re-read.

use crate::error::{Error, Result};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DATA_PER_GROUP: usize = 4;
const GROUPS_PER_LINE: usize = 6;

fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        b >>= 1;
        a <<= 1;
        if a & 0x20 != 0 {
            a ^= 0x25;
        }
    }
    p & 0x1f
}

fn alpha_pow(i: usize) -> u8 {
    (0..i).fold(1u8, |acc, _| gf_mul(acc, 2))
}

/// α⁻⁵ = α²⁶ (the multiplicative group has order 31).
fn check_symbol(group: usize, data: &[u8]) -> u8 {
    let mut sum = gf_mul(1, (group % 32) as u8);
    for (i, d) in data.iter().enumerate() {
        sum ^= gf_mul(alpha_pow(i + 1), *d);
    }
    // Σ_{i<5} αⁱ sᵢ + α⁵·check = 0  ⇒  check = α⁻⁵ · Σ.
    gf_mul(alpha_pow(26), sum)
}

fn symbol(c: u8) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    let c = match c {
        b'I' | b'L' => b'1',
        b'O' => b'0',
        c => c,
    };
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u8)
}

/// Encodes artifact bytes in the grouped form.
pub fn encode(bytes: &[u8]) -> String {
    let mut symbols = Vec::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            symbols.push(((acc >> bits) & 0x1f) as u8);
        }
    }
    if bits > 0 {
        symbols.push(((acc << (5 - bits)) & 0x1f) as u8);
    }
    let mut out = String::with_capacity(symbols.len() * 3 / 2);
    for (g, chunk) in symbols.chunks(DATA_PER_GROUP).enumerate() {
        if g > 0 {
            out.push(if g % GROUPS_PER_LINE == 0 { '\n' } else { ' ' });
        }
        for &s in chunk {
            out.push(char::from(ALPHABET[usize::from(s)]));
        }
        out.push(char::from(ALPHABET[usize::from(check_symbol(g, chunk))]));
    }
    out
}

/// Whether `s` looks like the grouped form (only alphabet characters and separators).
pub fn looks_like(s: &str) -> bool {
    s.bytes()
        .all(|c| symbol(c).is_some() || matches!(c, b' ' | b'-' | b'\n' | b'\r' | b'\t'))
}

/// Decodes the grouped form, naming the first group whose check character is wrong.
pub fn decode(s: &str) -> Result<Vec<u8>> {
    let groups: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|g| !g.is_empty())
        .collect();
    let mut symbols = Vec::with_capacity(groups.len() * DATA_PER_GROUP);
    for (g, text) in groups.iter().enumerate() {
        let raw: Vec<u8> = text
            .bytes()
            .map(|c| {
                symbol(c).ok_or_else(|| Error::BadText {
                    form: "grouped",
                    reason: format!(
                        "group {} ({text:?}) has a character outside the alphabet",
                        g + 1
                    ),
                })
            })
            .collect::<Result<_>>()?;
        let last = g + 1 == groups.len();
        if raw.len() < 2
            || raw.len() > DATA_PER_GROUP + 1
            || (!last && raw.len() != DATA_PER_GROUP + 1)
        {
            return Err(Error::BadText {
                form: "grouped",
                reason: format!(
                    "group {} ({text:?}) has {} characters, expected {}",
                    g + 1,
                    raw.len(),
                    DATA_PER_GROUP + 1
                ),
            });
        }
        let (data, check) = raw.split_at(raw.len() - 1);
        if check_symbol(g, data) != check[0] {
            return Err(Error::BadGroupChecksum {
                group: g + 1,
                text: (*text).to_owned(),
            });
        }
        symbols.extend_from_slice(data);
    }
    let mut out = Vec::with_capacity(symbols.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for s in symbols {
        acc = (acc << 5) | u32::from(s);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if acc != 0 || bits >= 5 {
        return Err(Error::BadText {
            form: "grouped",
            reason: "the last group has extra characters or non-zero padding".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_lengths() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&data)).unwrap(), data, "length {n}");
        }
    }

    #[test]
    fn every_single_substitution_and_adjacent_swap_is_located() {
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(91)).collect();
        let text = encode(&data);
        let chars: Vec<char> = text.chars().collect();
        let group_of = |pos: usize| text[..pos].split([' ', '\n']).count();
        for pos in 0..chars.len() {
            if !chars[pos].is_ascii_alphanumeric() {
                continue;
            }
            for &sub in ALPHABET {
                let sub = char::from(sub);
                if sub == chars[pos] {
                    continue;
                }
                let mut t = chars.clone();
                t[pos] = sub;
                let t: String = t.into_iter().collect();
                match decode(&t) {
                    Err(Error::BadGroupChecksum { group, .. }) => assert_eq!(group, group_of(pos)),
                    Err(Error::BadText { .. }) => {} // padding violation in the last group
                    other => panic!("substitution at {pos} not caught: {other:?}"),
                }
            }
            if pos + 1 < chars.len()
                && chars[pos + 1].is_ascii_alphanumeric()
                && chars[pos] != chars[pos + 1]
            {
                let mut t = chars.clone();
                t.swap(pos, pos + 1);
                let t: String = t.into_iter().collect();
                assert!(decode(&t).is_err(), "swap at {pos} not caught");
            }
        }
    }

    #[test]
    fn swapped_groups_are_caught_and_confusables_accepted() {
        let text = encode(b"hello, in8 world");
        let mut groups: Vec<&str> = text.split([' ', '\n']).collect();
        groups.swap(0, 1);
        assert!(matches!(
            decode(&groups.join(" ")),
            Err(Error::BadGroupChecksum { group: 1, .. })
        ));
        let lower = text.to_lowercase().replace('1', "l").replace('0', "o");
        assert_eq!(decode(&lower).unwrap(), b"hello, in8 world");
    }
}
