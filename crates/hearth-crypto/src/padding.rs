//! Padding of envelope plaintexts, so that the relay (and anyone on the path) learns an
//! envelope's size only to within a bucket (docs/security.md, "What the operator sees").
//!
//! Before it is encrypted, every envelope plaintext is framed and padded:
//!
//! | size | field                                                         |
//! |-----:|---------------------------------------------------------------|
//! |    1 | padding format version, `0x01`                                |
//! |    4 | `n`, the real plaintext's length (big-endian `u32`)           |
//! |    n | the plaintext                                                 |
//! |    … | zeros, up to the padded length                                |
//!
//! The padded length is [`padme`] of the framed length (`5 + n`), but never below
//! [`FLOOR`]: every small write (an appreciation, a key release, a reply) fills the same
//! 1 KiB, and a larger one grows by at most ~12% (PADMÉ's bound), leaking O(log log n)
//! bits of its size instead of O(log n).
//!
//! **Telling old from new.** Envelopes sealed before padding carry Automerge bytes as they
//! are (a run of change chunks, or a saved document), which always start with Automerge's
//! magic bytes `85 6f 4a 83`. So the first byte decides, without ambiguity:
//! `0x01` is this format; `0x00` and `0x02..=0x1f` are reserved for later padding formats
//! (refused as unknown: update hearth); anything from `0x20` up, and an empty plaintext, is a
//! plaintext from before padding, taken as it is.
//!
//! Opening checks the frame: the length must lie within the buffer and every padding byte
//! must be zero, or the envelope is refused like a tampered one. How much padding there is
//! is the sender's choice (any number of zeros is accepted), so the bucket rule can change
//! without a new format version.

use std::ops::Range;

use zeroize::Zeroizing;

/// The first byte of a padded plaintext: the padding format version.
pub const VERSION: u8 = 0x01;

/// The smallest padded plaintext, in bytes: every small write looks alike.
pub const FLOOR: usize = 1024;

/// The version byte and the real length in front of the plaintext.
pub const PREFIX_LEN: usize = 5;

/// First bytes from here up start a plaintext sealed before padding (Automerge's magic
/// byte `0x85` among them); those below are padding format versions.
const LEGACY_FROM: u8 = 0x20;

/// Why a padded plaintext was refused, or a plaintext could not be padded.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaddingError {
    /// The frame is broken: too short for its prefix, a length past the end, or padding
    /// that is not all zeros. Only a holder of the space key can seal such a thing: a
    /// faulty or modified client.
    #[error(
        "the envelope's padding is damaged ({0}): a faulty or modified client sealed it, and it is refused like a tampered envelope"
    )]
    Damaged(&'static str),
    /// The plaintext starts with a padding format this build does not read.
    #[error(
        "the envelope is padded in format {0}, which this hearth does not read: update hearth to open it"
    )]
    UnknownVersion(u8),
    /// The plaintext is too long for the frame's 32-bit length.
    #[error("{0} bytes are too many for one envelope (at most 4 GiB); split them into several")]
    TooLarge(usize),
}

/// PADMÉ (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication
/// with PURBs", 2019): `len` rounded up so that only its top ~log2(log2(len)) + 1 bits
/// may be non-zero. With E = ⌊log2 len⌋ and S = ⌊log2 E⌋ + 1, the low E − S bits are
/// cleared by rounding up. Lengths below 2 stay as they are; `None` if the result would
/// not fit a `usize`.
pub fn padme(len: usize) -> Option<usize> {
    let mask = padme_mask(len);
    len.checked_add(mask).map(|up| up & !mask)
}

/// The low bits PADMÉ clears for a length of `len`: 2^(E − S) − 1.
fn padme_mask(len: usize) -> usize {
    if len < 2 {
        return 0;
    }
    let e = len.ilog2();
    let s = e.ilog2() + 1;
    (1usize << (e - s)) - 1
}

/// How long the padded plaintext of a `len`-byte plaintext is: PADMÉ of the framed length,
/// at least [`FLOOR`]. `None` if `len` is too large to frame.
pub fn padded_len(len: usize) -> Option<usize> {
    if u32::try_from(len).is_err() {
        return None;
    }
    padme(len.checked_add(PREFIX_LEN)?.max(FLOOR))
}

/// The longest plaintext whose padded form is at most `room` bytes; `None` if not even an
/// empty one fits (`room` below [`FLOOR`]).
///
/// The largest PADMÉ length within `room` is `room` with its low E − S bits cleared (it
/// keeps the same E, and PADMÉ leaves it as it is); the frame's prefix comes off it.
pub fn max_plaintext_within(room: usize) -> Option<usize> {
    if room < FLOOR {
        return None;
    }
    let bucket = room & !padme_mask(room);
    let max = bucket - PREFIX_LEN;
    Some(max.min(u32::MAX as usize))
}

/// `plaintext`, framed and padded (see the module docs), ready to be encrypted.
///
/// # Errors
/// [`PaddingError::TooLarge`] beyond 4 GiB.
pub fn pad(plaintext: &[u8]) -> Result<Zeroizing<Vec<u8>>, PaddingError> {
    let too_large = PaddingError::TooLarge(plaintext.len());
    let total = padded_len(plaintext.len()).ok_or(too_large)?;
    let len = u32::try_from(plaintext.len()).map_err(|_| too_large)?;
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    out.push(VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(plaintext);
    out.resize(total, 0);
    Ok(out)
}

/// The plaintext inside a decrypted envelope: the framed part of a padded one, or the
/// whole of one sealed before padding.
///
/// # Errors
/// [`PaddingError::Damaged`] for a broken frame, [`PaddingError::UnknownVersion`] for a
/// padding format this build does not read.
pub fn unpad(opened: &[u8]) -> Result<&[u8], PaddingError> {
    content(opened).map(|range| &opened[range])
}

/// Where the plaintext lies in a decrypted envelope's bytes (see [`unpad`]).
///
/// # Errors
/// As [`unpad`].
pub(crate) fn content(opened: &[u8]) -> Result<Range<usize>, PaddingError> {
    match opened.first() {
        None => Ok(0..0),
        Some(&first) if first >= LEGACY_FROM => Ok(0..opened.len()),
        Some(&VERSION) => framed(opened),
        Some(&other) => Err(PaddingError::UnknownVersion(other)),
    }
}

/// The plaintext's place in a padded plaintext of format [`VERSION`], once its length and
/// zeros are checked.
fn framed(opened: &[u8]) -> Result<Range<usize>, PaddingError> {
    let len = opened
        .get(1..PREFIX_LEN)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or(PaddingError::Damaged("too short for its length"))?;
    let end = usize::try_from(u32::from_be_bytes(len))
        .ok()
        .and_then(|len| PREFIX_LEN.checked_add(len))
        .filter(|end| *end <= opened.len())
        .ok_or(PaddingError::Damaged("its length runs past its end"))?;
    if opened[end..].iter().any(|b| *b != 0) {
        return Err(PaddingError::Damaged("the padding is not all zeros"));
    }
    Ok(PREFIX_LEN..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PADMÉ by the paper's formula, in floating point, to check the integer version.
    fn padme_by_the_paper(len: usize) -> usize {
        let l = len as f64;
        let e = l.log2().floor();
        let s = e.log2().floor() + 1.0;
        let last_bits = (e - s) as u32;
        let mask = (1usize << last_bits) - 1;
        (len + mask) & !mask
    }

    #[test]
    fn padme_matches_the_papers_formula() {
        for len in 2..70_000 {
            assert_eq!(padme(len), Some(padme_by_the_paper(len)), "length {len}");
        }
        for len in [1usize << 20, (1 << 20) + 1, 2_000_000, 4_000_000_000] {
            assert_eq!(padme(len), Some(padme_by_the_paper(len)), "length {len}");
        }
        assert_eq!(padme(0), Some(0));
        assert_eq!(padme(1), Some(1));
        assert_eq!(padme(usize::MAX), None, "no overflow, just no answer");
    }

    #[test]
    fn padded_sizes_at_the_boundaries() {
        // Everything up to the floor's worth of plaintext fills exactly the floor.
        for len in [0, 1, 200, FLOOR - PREFIX_LEN] {
            assert_eq!(padded_len(len), Some(FLOOR), "length {len}");
        }
        // Past it: E = 10, S = 4, so multiples of 64 up to 2 KiB...
        assert_eq!(padded_len(FLOOR - PREFIX_LEN + 1), Some(1024 + 64));
        assert_eq!(padded_len(1088 - PREFIX_LEN), Some(1088));
        assert_eq!(padded_len(1088 - PREFIX_LEN + 1), Some(1152));
        assert_eq!(padded_len(2047 - PREFIX_LEN), Some(2048));
        // ...then E = 11, S = 4: multiples of 128, and so on up.
        assert_eq!(padded_len(2048 - PREFIX_LEN + 1), Some(2048 + 128));
        assert_eq!(padded_len(65_536 - PREFIX_LEN), Some(65_536));
        assert_eq!(padded_len(65_536 - PREFIX_LEN + 1), Some(65_536 + 2048));
        // Near the relay's 2 MiB: E = 20, S = 5, multiples of 32 KiB.
        assert_eq!(padded_len(2_000_000), Some(62 * 32_768));
        assert_eq!(padded_len(u32::MAX as usize + 1), None);
    }

    #[test]
    fn past_the_floor_padding_adds_less_than_a_sixteenth() {
        // S ≥ 4 from E = 8 on, so at most 2^(E − 4) − 1 bytes are added to ≥ 2^E.
        for len in (FLOOR..3_000_000).step_by(997) {
            let framed = len + PREFIX_LEN;
            let padded = padded_len(len).unwrap();
            assert!(padded >= framed);
            assert!(padded - framed < framed / 16, "{len} → {padded}");
        }
    }

    #[test]
    fn every_length_around_the_bucket_edges_round_trips() {
        let edges = [FLOOR, 1088, 1152, 2048, 2176, 4096, 65_536, 67_584];
        for edge in edges {
            for len in edge.saturating_sub(PREFIX_LEN + 3)..edge + 3 {
                let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
                let padded = pad(&plaintext).unwrap();
                assert_eq!(Some(padded.len()), padded_len(len), "length {len}");
                assert_eq!(padded[0], VERSION);
                assert_eq!(unpad(&padded).unwrap(), &plaintext[..], "length {len}");
            }
        }
        assert_eq!(unpad(&pad(b"").unwrap()).unwrap(), b"");
    }

    #[test]
    fn damaged_padding_is_refused() {
        let padded = pad(b"a new appreciation").unwrap();
        // A non-zero byte anywhere in the padding.
        for at in PREFIX_LEN + 18..padded.len() {
            let mut bad = padded.clone();
            bad[at] = 1;
            assert_eq!(
                unpad(&bad),
                Err(PaddingError::Damaged("the padding is not all zeros")),
                "byte {at}"
            );
        }
        // A length past the end, or a frame cut short.
        let mut long = padded.clone();
        long[1..5].copy_from_slice(&(FLOOR as u32 - 4).to_be_bytes());
        assert_eq!(
            unpad(&long),
            Err(PaddingError::Damaged("its length runs past its end"))
        );
        long[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(unpad(&long), Err(PaddingError::Damaged(_))));
        for cut in 1..PREFIX_LEN {
            assert_eq!(
                unpad(&padded[..cut]),
                Err(PaddingError::Damaged("too short for its length"))
            );
        }
        // The length may shrink only over zeros: then the result is another plaintext,
        // which the AEAD (not the padding) stops anyone without the key from making.
        let mut exact = padded.clone();
        exact[1..5].copy_from_slice(&(FLOOR as u32 - 5).to_be_bytes());
        assert!(unpad(&exact).is_ok());
    }

    #[test]
    fn any_amount_of_zeros_is_accepted() {
        let mut padded = pad(b"walk").unwrap();
        padded.truncate(PREFIX_LEN + 4);
        assert_eq!(unpad(&padded).unwrap(), b"walk");
        padded.resize(5000, 0);
        assert_eq!(unpad(&padded).unwrap(), b"walk");
    }

    #[test]
    fn plaintexts_from_before_padding_open_as_they_are() {
        // What every earlier hearth sealed: Automerge bytes, magic 85 6f 4a 83 first.
        let automerge = [0x85, 0x6f, 0x4a, 0x83, 0x12, 0x00, 0x00, 0x07];
        assert_eq!(unpad(&automerge).unwrap(), &automerge[..]);
        // The first release's envelope vector holds ASCII text.
        assert_eq!(unpad(b"a new appreciation").unwrap(), b"a new appreciation");
        assert_eq!(unpad(b"").unwrap(), b"");
        for first in LEGACY_FROM..=u8::MAX {
            assert_eq!(unpad(&[first, 0, 0]).unwrap(), &[first, 0, 0]);
        }
    }

    #[test]
    fn later_padding_formats_are_refused_as_unknown() {
        for first in (0..LEGACY_FROM).filter(|b| *b != VERSION) {
            assert_eq!(
                unpad(&[first, 0, 0, 0, 0]),
                Err(PaddingError::UnknownVersion(first))
            );
        }
    }

    #[test]
    fn the_largest_plaintext_within_a_room_fills_it_and_one_more_byte_does_not() {
        for room in (0..70_000).chain((2_097_000..2_097_300).chain([4 << 20])) {
            match max_plaintext_within(room) {
                None => assert!(padded_len(0).unwrap() > room, "room {room}"),
                Some(max) => {
                    assert!(padded_len(max).unwrap() <= room, "room {room}");
                    assert!(padded_len(max + 1).unwrap() > room, "room {room}");
                }
            }
        }
    }
}
